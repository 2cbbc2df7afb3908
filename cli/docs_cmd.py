"""`guideline-qa withdraw DOC --reason TEXT` and `guideline-qa reinstate DOC`: the knowledge team's undo."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    """Add the `withdraw` and `reinstate` subcommands."""
    s = sub.add_parser("withdraw", help="stop serving a document at once (nothing is deleted)")
    s.add_argument("doc", metavar="DOC", help="file name or doc_id (see `guideline-qa docs`)")
    s.add_argument("--reason", required=True, help="why it must not be served (recorded)")
    s.add_argument("--by", help="who withdraws it (default: the OS user)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_withdraw)

    s = sub.add_parser("reinstate", help="serve a withdrawn document again")
    s.add_argument("doc", metavar="DOC", help="file name or doc_id (see `guideline-qa docs`)")
    s.add_argument("--reason", default="", help="why it is served again (recorded)")
    s.add_argument("--by", help="who reinstates it (default: the OS user)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_reinstate)


def _cmd_withdraw(args: argparse.Namespace) -> int:
    from cli.main import settings_from
    from ingest.withdraw import withdraw

    return _print(withdraw(settings_from(args), args.doc, args.reason, args.by), args.json)


def _cmd_reinstate(args: argparse.Namespace) -> int:
    from cli.main import settings_from
    from ingest.withdraw import reinstate

    return _print(reinstate(settings_from(args), args.doc, args.by, args.reason), args.json)


def _print(out: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(out, indent=1))
        return 0
    print(describe(out))
    return 0


def describe(out: dict) -> str:
    """One or two lines saying what a withdraw or reinstate did.

    Example: {'action': 'withdraw', 'file': 'a.pdf', ...} -> 'withdrawn: a.pdf (doc 1f2e...) by ana at ...'
    """
    who = f"by {out['by']} at {out['at']}" + (f": {out['reason']}" if out["reason"] else "")
    if out["action"] == "withdraw":
        line = (f"withdrawn: {out['file']} (doc {out['doc_id']}) {who}; no longer served from the next "
                f"question (generation {out['generation']})")
    else:
        status = out["status"] + (f" (superseded by {out['superseded_by']})" if out["superseded_by"] else "")
        line = f"reinstated: {out['file']} (doc {out['doc_id']}) {who}; now {status} (generation {out['generation']})"
    extra = []
    if out["now_current"]:
        extra.append(f"current again: {', '.join(out['now_current'])}")
    if out["now_superseded"]:
        extra.append(f"now superseded: {', '.join(out['now_superseded'])}")
    return "\n".join([line, *extra])
