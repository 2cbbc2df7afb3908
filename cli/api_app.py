"""The HTTP API of `guideline-qa api` (FastAPI): ask, retrieve, documents, health and ingest jobs over one QA
per process, answering with the same JSON as the command line's `--json` (cli.main, rag.types)."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag.errors import ConfigError, GQAError, IndexError_, StoreError
from rag.types import Answer

log = logging.getLogger(__name__)

ROLES = ("reader", "admin")
TOKENS_FORM = "comma-separated name:token:role, role reader or admin (e.g. ehr:s3cret:reader,kt:0ther:admin)"
DocType = Literal["guideline", "formulary", "label", "guidance"]


class ApiError(Exception):
    """An error answered as `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Token:
    """One API client: its name (for logs and the audit), its secret and its role."""

    name: str
    secret: str = field(repr=False)
    role: str


def parse_tokens(raw: str) -> tuple[Token, ...]:
    """GQA_API_TOKENS parsed; a ConfigError names the variable and the entry, never a secret.

    Example: 'ehr:s3cret:reader,kt:0ther:admin' -> (Token('ehr', 's3cret', 'reader'), Token('kt', '0ther', 'admin'))
    """
    if not raw.strip():
        raise ConfigError(f"GQA_API_TOKENS is not set; the API answers bearer tokens only: set it to {TOKENS_FORM}")
    tokens: list[Token] = []
    for i, entry in enumerate(raw.split(","), start=1):
        name, _, rest = entry.strip().partition(":")
        secret, _, role = rest.rpartition(":")  # a secret may itself hold colons
        name, secret, role = name.strip(), secret.strip(), role.strip()
        what = f"GQA_API_TOKENS entry {i} (name {name!r})" if name else f"GQA_API_TOKENS entry {i}"
        if not name or not secret or not role:
            raise ConfigError(f"{what} is not name:token:role; write {TOKENS_FORM}")
        if role not in ROLES:
            raise ConfigError(f"{what} has role {role!r}; choose one of {', '.join(ROLES)}")
        if any(t.name == name for t in tokens):
            raise ConfigError(f"{what}: the name is used twice; give every client its own name")
        if any(hmac.compare_digest(t.secret, secret) for t in tokens):
            raise ConfigError(f"{what}: the same token as another entry; give every client its own token")
        tokens.append(Token(name, secret, role))
    return tuple(tokens)


class Question(BaseModel):
    """The body of `POST /v1/retrieve`: the question and the flags of `retrieve`."""

    model_config = ConfigDict(extra="forbid")
    question: str
    k: int | None = Field(default=None, ge=1, description="passages (default 10)")
    family: list[str] = Field(default=[], description="only these families")
    type: list[DocType] = Field(default=[], description="only these document types")
    include_superseded: bool = False

    def filters(self):
        """The rag.retrieve.Filters of these fields (as cli.main.filters_from makes them from flags)."""
        from rag.retrieve import Filters

        return Filters(tuple(self.family), tuple(self.type), self.include_superseded)


class AskBody(Question):
    """The body of `POST /v1/ask`: the flags of `ask`."""

    generator: str | None = Field(default=None, description="extractive, openai or llamacpp (default GQA_GENERATOR)")


_bearer = HTTPBearer(auto_error=False, description="a token of GQA_API_TOKENS")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def caller(request: Request, creds: Credentials) -> Token:
    """The token's client; 401 without a valid bearer token (every token compared in constant time)."""
    if creds is None or not creds.credentials:
        raise ApiError(401, "no bearer token: send the header 'Authorization: Bearer <token>' (GQA_API_TOKENS)")
    given = creds.credentials.encode()
    found = None
    for t in request.app.state.tokens:  # no early exit: the time taken does not tell which token matched
        if hmac.compare_digest(t.secret.encode(), given):
            found = t
    if found is None:
        raise ApiError(401, "the bearer token is not one of GQA_API_TOKENS; ask the server's administrator for one")
    return found


def admin(who: Annotated[Token, Depends(caller)]) -> Token:
    """The caller when its role is admin; 403 for a reader."""
    if who.role != "admin":
        raise ApiError(403, f"token {who.name!r} has role reader; this needs an admin token (GQA_API_TOKENS)")
    return who


Reader = Annotated[Token, Depends(caller)]
Admin = Annotated[Token, Depends(admin)]


def _answered(qa, answer: Answer, who: Token) -> None:
    """The one place where an answer given through the API is recorded: its audit row (rag.audit), under
    the token's name; the question text only where GQA_STORE_QUESTIONS allows. Never fails the answer."""
    from rag import audit

    audit.record(qa.settings, answer, "api", who.name)


def create_app(qa, tokens: tuple[Token, ...]) -> FastAPI:
    """The API over `qa` (a rag.qa.QA: one per process, safe across threads) for `tokens`."""
    from cli import api_chat, api_jobs

    app = FastAPI(title="guideline-qa", version="1", summary="Cited answers from clinical guidelines",
                  description="Bearer tokens from GQA_API_TOKENS; errors are {\"error\": \"<one line>\"}.")
    app.state.qa, app.state.tokens, app.state.started = qa, tokens, time.time()
    app.state.jobs = api_jobs.Jobs(qa.settings, qa.engine.embedder)
    _errors(app)
    _routes(app)
    app.include_router(api_chat.router)
    app.include_router(api_jobs.router)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/v1/health", summary="Status, index version, documents and uptime (no token needed)")
    def health(request: Request) -> JSONResponse:
        from rag.storage import published

        state = request.app.state
        out: dict = {"status": "ok", "index_version": None, "documents": 0, "passages": 0,
                     "uptime_s": round(time.time() - state.started, 1)}
        if published(state.qa.settings) is None:
            return JSONResponse({**out, "status": "unavailable", "error": _nothing(state.qa)}, 503)
        snap = state.qa.engine.view().snap
        out |= {"index_version": snap.gen_id, "passages": snap.size,
                "documents": sum(d.status == "current" for d in snap.docs.values())}
        return JSONResponse(out)

    @app.post("/v1/ask", summary="An answer with citations, as `guideline-qa ask --json`")
    def ask(body: AskBody, who: Reader, request: Request) -> dict:
        qa = request.app.state.qa
        answer = qa.answer(body.question, filters=body.filters(), generator=body.generator, k=body.k)
        _answered(qa, answer, who)
        return answer.to_json()

    @app.post("/v1/retrieve", summary="The passages retrieved, as `guideline-qa retrieve --json`")
    def retrieve(body: Question, who: Reader, request: Request) -> dict:
        from cli.main import retrieve_json
        from rag.qa import check_question

        question = check_question(body.question)
        hits = request.app.state.qa.engine.retrieve(question, k=body.k, filters=body.filters())
        return retrieve_json(question, hits)

    @app.get("/v1/documents", summary="Every ingested document, as `guideline-qa docs --json`")
    def documents(who: Reader, request: Request) -> list[dict]:
        from cli.main import documents_json

        return documents_json(request.app.state.qa.settings)

    @app.post("/v1/documents", status_code=202, summary="Upload PDFs and start an ingest job (admin)")
    def upload(who: Admin, request: Request, files: Annotated[list[UploadFile], File(description="PDF files")],
               family: Annotated[str | None, Form()] = None,
               version: Annotated[str | None, Form()] = None) -> dict:
        uploads = [(f.filename or "", f.file.read()) for f in files]
        return request.app.state.jobs.start(uploads, family or None, version or None, who.name)


def _nothing(qa) -> str:
    return f"nothing is published in {qa.settings.home}; run `guideline-qa ingest PATH` or POST /v1/documents first"


def _errors(app: FastAPI) -> None:
    """Every error as {"error": one line}: ours, the product's (GQAError), FastAPI's and unexpected ones."""

    @app.exception_handler(ApiError)
    def _api(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, exc.status, headers=headers)

    @app.exception_handler(GQAError)
    def _product(request: Request, exc: GQAError) -> JSONResponse:
        status = 503 if isinstance(exc, IndexError_ | StoreError) else 400
        return JSONResponse({"error": str(exc)}, status)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_line(exc.errors())}, 400)

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        text = {404: f"no such endpoint {request.url.path}; see /openapi.json",
                405: f"{request.method} is not allowed on {request.url.path}; see /openapi.json"}
        return JSONResponse({"error": text.get(exc.status_code, str(exc.detail))}, exc.status_code)

    @app.exception_handler(Exception)
    def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        log.debug("traceback", exc_info=exc)
        return JSONResponse({"error": "internal error (a bug); the server log has its type"}, 500)


def validation_line(errors) -> str:
    """FastAPI's validation errors as one line, without the values sent (they may hold a question).

    Example: [{'loc': ('body', 'k'), 'msg': 'Input should be greater than or equal to 1'}] ->
    'k: Input should be greater than or equal to 1'
    """
    parts = []
    for e in list(errors)[:3]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) + " (see /openapi.json)"
