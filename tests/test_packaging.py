"""What a new user runs must have what it needs: `make bench`'s install set holds every package
bench/ imports, and the `[project.scripts]` commands in pyproject.toml resolve to callables."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import ROOT

LOCAL = {"app", "model", "training", "bench", "tests"}
STAMPS = {"$(VENV)/.runtime": "requirements.txt", "$(VENV)/.dev": "requirements-dev.txt"}


def requirement_names(file: str) -> set[str]:
    """Normalised distribution names pinned in a requirements file and the files it includes."""
    names: set[str] = set()
    for line in (ROOT / file).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(line[3:].strip())
        elif line:
            names.add(normalise(re.split(r"[\[=<>~!; ]", line)[0]))
    return names


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {
        name
        for name in found
        if name not in sys.stdlib_module_names and name not in LOCAL | {"__future__"}
    }


def test_make_bench_installs_what_bench_imports() -> None:
    makefile = (ROOT / "Makefile").read_text()
    prerequisites = re.search(r"^bench:([^#\n]*)", makefile, re.M)
    assert prerequisites, "no bench target in the Makefile"
    installed: set[str] = set()
    for stamp in prerequisites.group(1).split():
        installed |= requirement_names(STAMPS[stamp]) if stamp in STAMPS else set()
    distributions = importlib.metadata.packages_distributions()
    for module in third_party_imports("bench"):
        owners = {normalise(d) for d in distributions.get(module, [module])}
        assert owners & installed, f"bench/ imports {module}, which `make bench` does not install"


def test_project_scripts_resolve_to_callables() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"char-lstm-train", "char-lstm-generate", "char-lstm-serve"}
    for name, target in scripts.items():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_serve_command_passes_its_arguments_to_uvicorn(capsys) -> None:
    from app.serve import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: char-lstm-serve") and "--log-config" in out
