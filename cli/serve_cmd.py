"""`guideline-qa serve`: start the web app (clinician page and knowledge-team page) with Streamlit."""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import threading
from pathlib import Path

from rag.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand."""
    s = sub.add_parser("serve", help="start the web app (clinician page and knowledge-team page)")
    s.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; put a reverse proxy "
                        "with single sign-on in front before exposing it)")
    s.set_defaults(func=_cmd_serve)


def app_path() -> Path:
    """ui/app.py of the installed package."""
    spec = importlib.util.find_spec("ui")
    if spec is None or not spec.origin:
        raise ConfigError("the ui package is not installed; run `make setup` (pip install -e .)")
    return Path(spec.origin).parent / "app.py"


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line for the app.

    Example: ('127.0.0.1', 8501) -> [python, '-m', 'streamlit', 'run', '.../ui/app.py', '--server.address',
    '127.0.0.1', '--server.port', '8501', ...]
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 1 and 65535 (default 8501)")
    if not host.strip():
        raise ConfigError("--host is empty; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path()),
        "--server.address", host, "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.headless", "true",
        # A server does not watch its own source files (that is for development, and costs CPU).
        "--server.fileWatcherType", "none",
        # Clinicians get no developer menu (rerun, settings, deploy).
        "--client.toolbarMode", "minimal",
        # An uncaught exception shows a generic message, never its text or traceback (server paths);
        # the pages show one-line errors themselves and log tracebacks on the server.
        "--client.showErrorDetails", "none",
    ]


def _cmd_serve(args: argparse.Namespace) -> int:
    cmd = streamlit_command(args.host, args.port)
    print(f"guideline-qa: serving on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    return run_until_stopped(cmd)


def run_until_stopped(cmd: list[str]) -> int:
    """Run the server; on Ctrl+C or SIGTERM stop it too (no orphaned Streamlit process), return its code."""
    proc = subprocess.Popen(cmd)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
