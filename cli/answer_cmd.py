"""`guideline-qa ask`: answer a question from the published documents, with numbered citations."""

from __future__ import annotations

import argparse
import json
import textwrap

from rag.errors import ConfigError
from rag.types import Answer


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `ask` subcommand."""
    s = sub.add_parser("ask", help="answer a question with cited passages (or abstain)")
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the answer, citations and hits as JSON")
    s.add_argument("--generator", metavar="NAME",
                   help="extractive (default, no LLM), openai (GQA_OPENAI_BASE_URL, GQA_OPENAI_MODEL) "
                        "or llamacpp (GQA_GGUF_PATH); default GQA_GENERATOR")
    s.add_argument("-k", type=int, default=None, help="passages retrieved (default 10)")
    s.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    s.add_argument("--type", dest="doc_types", action="append", default=[],
                   choices=["guideline", "formulary", "label", "guidance"], help="only this document type")
    s.add_argument("--include-superseded", action="store_true", help="also answer from superseded versions")
    s.set_defaults(func=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer, then print it (text with sources, or JSON); an abstention is a success."""
    from cli.main import filters_from, settings_from
    from rag import audit
    from rag.qa import QA

    if args.k is not None and args.k < 1:
        raise ConfigError(f"-k {args.k}: must be at least 1")
    qa = QA(settings_from(args))
    answer = qa.answer(args.question, filters=filters_from(args), generator=args.generator, k=args.k)
    audit.record(qa.settings, answer, "cli", audit.os_user())  # never fails the answer: logs a failure
    print(json.dumps(answer.to_json(), indent=1) if args.json else format_answer(answer))
    return 0


def format_answer(answer: Answer) -> str:
    """The answer text, then one block per citation: title, version, page, section and the quote."""
    lines = textwrap.wrap(answer.text, 100) or [answer.text]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        ch, d = c.hit.chunk, c.hit.doc
        status = "" if d.status == "current" else f", {d.status}"
        printed = ch.page_label and ch.page_label != str(ch.page)
        page = f"p.{ch.page}" + (f" [printed {ch.page_label}]" if printed else "")
        lines.append(f"[{c.n}] {d.title} ({d.version}{status}), {page}" + (f", {ch.section}" if ch.section else ""))
        lines += textwrap.wrap(f'"{c.quote}"', 96, initial_indent="    ", subsequent_indent="    ")
    if answer.removed:
        lines += ["", f"({len(answer.removed)} generated sentence(s) failed verification and were removed; "
                      "see --json)"]
    return "\n".join(lines)
