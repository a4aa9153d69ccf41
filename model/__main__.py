"""`python -m model ...`: sample text from a model directory (see model/cli.py, or --help)."""

import sys

from model.cli import main

sys.exit(main())
