"""`guideline-qa audit`: export the audit trail (one row per answer given) for clinical governance."""

from __future__ import annotations

import argparse
import csv
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `audit` subcommand."""
    s = sub.add_parser("audit", help="export the audit trail: one row per answer given (app, api, mcp, cli)")
    s.add_argument("--since", metavar="DATE",
                   help="only answers from DATE on: YYYY-MM-DD (midnight UTC) or an ISO 8601 time")
    s.add_argument("--format", dest="fmt", choices=["csv", "json"], default="csv",
                   help="csv (default): a header row, then one row per answer, citations as JSON text; "
                        "json: one JSON array of objects, citations as a list")
    s.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    """Print the rows (retention applied first), oldest first."""
    from cli.main import settings_from
    from rag.audit import COLUMNS, parse_since, rows

    since = parse_since(args.since) if args.since else None  # a bad date fails before anything is opened
    found = rows(settings_from(args), since)
    if args.fmt == "json":
        print(json.dumps(found, indent=1, ensure_ascii=False))
        return 0
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(COLUMNS)
    for r in found:
        out.writerow([json.dumps(r[c], ensure_ascii=False) if c == "citations" else
                      int(r[c]) if c == "abstained" else r[c] for c in COLUMNS])
    return 0
