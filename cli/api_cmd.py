"""`guideline-qa api`: serve the HTTP API (cli/api_app.py) with uvicorn, one QA for the whole process."""

from __future__ import annotations

import argparse
import logging
import sys

from rag.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `api` subcommand."""
    s = sub.add_parser("api", help="serve the HTTP API (ask, retrieve, documents, OpenAI-compatible chat)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; put a TLS reverse proxy "
                        "in front before exposing it)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.set_defaults(func=_cmd_api)


class PathsOnly(logging.Filter):
    """Drops the query string from uvicorn's access lines: only the path is logged, never what was sent.

    Example: ('127.0.0.1:5', 'GET', '/v1/ask?q=warfarin', '1.1', 200) -> (..., '/v1/ask', '1.1', 200)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def build(host: str, port: int):
    """The uvicorn server for the API over the configured home (tokens checked before any model loads)."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("the HTTP API needs FastAPI and uvicorn: pip install -e '.[api]' (or `make setup`)") from None
    from cli.api_app import create_app, parse_tokens
    from cli.main import settings_from
    from rag.qa import QA

    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 1 and 65535 (default 8000)")
    if not host.strip():
        raise ConfigError("--host is empty; use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    settings = settings_from(argparse.Namespace())
    tokens = parse_tokens(settings.api_tokens)
    config = uvicorn.Config(create_app(QA(settings), tokens), host=host, port=port, log_level="info",
                            server_header=False)
    logging.getLogger("uvicorn.access").addFilter(PathsOnly())  # after Config: it sets uvicorn's logging up
    return uvicorn.Server(config)


def _cmd_api(args: argparse.Namespace) -> int:
    server = build(args.host, args.port)
    print(f"guideline-qa: API on http://{args.host}:{args.port}/v1 (docs /docs; Ctrl+C stops)", file=sys.stderr)
    server.run()
    return 0
