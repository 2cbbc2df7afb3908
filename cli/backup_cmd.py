"""`guideline-qa backup DEST`: copy the database and the published index, safely while serving and ingesting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `backup` subcommand."""
    s = sub.add_parser(
        "backup", help="copy the database and the published index to DEST (safe while the app serves and an "
                       "ingest runs)",
        description="DEST must not exist or be an empty folder. To restore, copy DEST to a new folder and set "
                    "GQA_HOME to it (README, Backups).",
    )
    s.add_argument("dest", metavar="DEST")
    s.add_argument("--json", action="store_true", help="print what was copied as JSON")
    s.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    """Take the backup and print one line (or JSON) saying what it holds."""
    from cli.main import settings_from
    from rag.backup import backup

    settings = settings_from(args)
    if settings.database_url:  # the library is in PostgreSQL: its own tools back it up consistently
        from rag.errors import ConfigError
        from rag.pg.connect import redact

        raise ConfigError(f"`backup` copies the embedded store; the library is in {redact(settings.database_url)}: "
                          "back it up with pg_dump --format=custom (or the server's base backups), and restore "
                          "with pg_restore")
    home = settings.home
    r = backup(home, Path(args.dest).expanduser())
    if args.json:
        print(json.dumps({"dest": str(r.dest), "generation": r.generation, "documents": r.documents,
                          "uploads": r.uploads, "bytes": r.size_bytes, "attempts": r.attempts}, indent=1))
        return 0
    print(f"backed up {home} to {r.dest}: index {r.generation or 'none'}, {r.documents} documents, {r.uploads} "
          f"uploaded PDFs, {r.size_bytes / 1e6:.1f} MB; to restore, copy it to a new folder and set GQA_HOME to "
          "it (README, Backups)")
    return 0
