"""`guideline-qa db upgrade`: apply the PostgreSQL schema migrations this release carries (rag/pg/migrations)."""

from __future__ import annotations

import argparse

from rag.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `db` subcommand."""
    s = sub.add_parser("db", help="manage the PostgreSQL store (GQA_DATABASE_URL or --database-url)")
    actions = s.add_subparsers(dest="db_action", required=True, parser_class=type(s))
    up = actions.add_parser("upgrade", help="apply the schema migrations the database lacks (safe to repeat)")
    up.set_defaults(func=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    """Apply what is missing; print each migration applied, or that the schema is current."""
    from cli.main import settings_from
    from rag.pg.connect import known_migrations, redact, upgrade

    settings = settings_from(args)
    if not settings.database_url:
        raise ConfigError("`db upgrade` needs a PostgreSQL database: set GQA_DATABASE_URL or pass --database-url "
                          "(the embedded store needs no upgrade)")
    applied = upgrade(settings.database_url)
    for name in applied:
        print(f"applied {name}")
    latest = known_migrations()[-1][0]
    print(f"{redact(settings.database_url)}: schema {latest} " + ("(upgraded)" if applied else "(already current)"))
    return 0
