"""`guideline-qa mcp`: the Model Context Protocol over stdio (the official `mcp` SDK), for agent hosts.

Two tools over one QA per process: `search_guidelines` answers with the JSON of `retrieve --json` and
`answer_with_citations` with that of `ask --json`. The SDK's stdio transport owns stdout (it points fd 1
at stderr while it serves, so a stray print cannot corrupt the protocol); logging goes to stderr and
never carries a question.
"""

# No `from __future__ import annotations`: the SDK reads the tools' signatures, and their `Context` is
# imported inside build() (the SDK is an extra), where a string annotation could not be resolved.
import argparse
import logging
from typing import Annotated, Any

from pydantic import Field

from rag.errors import ConfigError, GQAError

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Cited answers from the clinical guidelines and formularies this organisation has published. "
    "answer_with_citations gives a verified answer whose [n] markers refer to its citations (document, "
    "version, page, quote), or abstains when the documents do not say; search_guidelines returns the "
    "passages only. Quote the citations with the answer; never answer beyond them."
)
K_MAX = 50  # more passages than an agent's context can use; the CLI's -k has no bound

Query = Annotated[str, Field(description="the question or search words, under 2000 characters")]
K = Annotated[int, Field(ge=1, le=K_MAX, description=f"passages to return (1 to {K_MAX})")]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `mcp` subcommand."""
    s = sub.add_parser("mcp", help="serve the Model Context Protocol over stdio (for agent hosts; README, MCP)")
    s.set_defaults(func=_cmd_mcp)


def build(qa) -> Any:
    """The MCP server over `qa` (a rag.qa.QA, safe across threads: the SDK runs each call in a worker thread)."""
    try:
        from mcp.server.mcpserver import Context, MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp_types import ToolAnnotations
    except ImportError:
        raise ConfigError("the MCP server needs the mcp package: pip install -e '.[mcp]' (or `make setup`)") from None
    from importlib.metadata import version

    server = MCPServer("guideline-qa", title="Clinical guideline Q&A", instructions=INSTRUCTIONS,
                       version=version("guideline-qa"))
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=reads, description="The passages of the published documents that best match "
                 "`query` (current versions only), as `guideline-qa retrieve --json`: question and hits, each "
                 "with its text, score, document, version, page and section.")
    def search_guidelines(query: Query, k: K = 5) -> dict[str, Any]:
        from cli.main import retrieve_json
        from rag.qa import check_question

        try:
            question = check_question(query)  # the rules of `retrieve` and `ask`: not empty, under 2000
            return retrieve_json(question, qa.engine.retrieve(question, k=k))
        except GQAError as exc:  # a one-line message the model can act on, not a crash
            raise ToolError(str(exc)) from None

    @server.tool(annotations=reads, description="A verified answer to `question` from the published "
                 "documents, as `guideline-qa ask --json`: text with [n] markers, citations (document, "
                 "version, page, quote) and whether it abstained because the documents do not say.")
    def answer_with_citations(question: Query, ctx: Context) -> dict[str, Any]:
        from rag import audit

        try:
            answer = qa.answer(question)
        except GQAError as exc:
            raise ToolError(str(exc)) from None
        audit.record(qa.settings, answer, "mcp", caller(ctx))  # never fails the answer: logs a failure
        return answer.to_json()

    return server


def caller(ctx) -> str:
    """The audit's `who`: the OS user running the server and the host it names itself in the handshake
    (self-declared, so a label rather than an identity). Example: 'alice via claude-ai'"""
    from rag import audit

    params = getattr(ctx.session, "client_params", None)
    host = params.client_info.name if params is not None and params.client_info is not None else None
    return f"{audit.os_user()} via {host}" if host else audit.os_user()


def _cmd_mcp(args: argparse.Namespace) -> int:
    from cli.main import settings_from
    from rag.qa import QA
    from rag.storage import published

    settings = settings_from(args)
    server = build(QA(settings))
    if published(settings) is None:  # the tools answer an error naming ingest until then
        log.warning("nothing is published in %s yet; run `guideline-qa ingest PATH`", settings.home)
    server.run("stdio")  # returns when the host closes stdin
    return 0
