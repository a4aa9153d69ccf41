"""`char-lstm-serve` (and `python -m app.serve`): run the server with uvicorn, as `make serve` does.

    char-lstm-serve --host 127.0.0.1 --port 8000          # settings from CHARLSTM_* variables

Any further arguments go to uvicorn's own command line (`--log-config`, `--workers`, ...).  The HTTP
protocol is app/connection.py's, which cuts off slow and idle clients (CHARLSTM_HEADER_TIMEOUT_S,
BODY_TIMEOUT_S, KEEP_ALIVE_S, SLOW_CLIENT_S); `make serve` and the Docker image name it too.
"""

from __future__ import annotations

import sys

PROTOCOL = "app.connection:GuardedHttpProtocol"


def command(host: str, port: int, *extra: str) -> list[str]:
    """The command line that runs this server in a subprocess, as `make serve` does (the tests'
    and the benches' servers)."""
    return [sys.executable, "-m", "app.serve", "--host", host, "--port", str(port), *extra]


def main(argv: list[str] | None = None) -> int:
    from uvicorn.main import main as uvicorn_cli  # a click command

    args = sys.argv[1:] if argv is None else argv
    defaults = [
        "--http",
        PROTOCOL,
        "--timeout-graceful-shutdown",
        "10",
    ]  # streams end at once on SIGTERM (app/main.py)
    try:
        uvicorn_cli.main(["app.main:app", *defaults, *args], prog_name="char-lstm-serve")
    except SystemExit as exc:  # click ends with it, also after --help
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # a refused setting's message (app/settings.py)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
