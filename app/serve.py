"""`char-lstm-serve` (and `python -m app.serve`): run the server with uvicorn, as `make serve` does.

    char-lstm-serve --host 127.0.0.1 --port 8000          # settings from CHARLSTM_* variables

Any further arguments go to uvicorn's own command line (`--log-config`, `--workers`, ...).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from uvicorn.main import main as uvicorn_cli  # a click command

    args = sys.argv[1:] if argv is None else argv
    defaults = ["--timeout-graceful-shutdown", "10"]  # open streams end at once on SIGTERM (app/main.py)
    try:
        uvicorn_cli.main(["app.main:app", *defaults, *args], prog_name="char-lstm-serve")
    except SystemExit as exc:  # click ends with it, also after --help
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
