"""The OpenAI-compatible part of the HTTP API: `POST /v1/chat/completions` (plain or streamed as server-sent
events) and `GET /v1/models`, so that an OpenAI client, Open WebUI or LibreChat can ask unchanged."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from cli.api_app import ApiError, Reader, _answered
from rag.types import Answer

MODEL = "guideline-qa"
router = APIRouter()


class Message(BaseModel):
    """One chat turn; `content` is a string or OpenAI's list of parts ({"type": "text", "text": ...})."""

    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None


class ChatBody(BaseModel):
    """OpenAI's chat request; sampling fields (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = MODEL
    messages: list[Message] = Field(min_length=1)
    stream: bool = False


def last_question(messages: list[Message]) -> str:
    """The text of the last user message: earlier turns are ignored (every question stands alone).

    Example: [user 'a', assistant 'b', user [{'type': 'text', 'text': 'c'}]] -> 'c'
    """
    for m in reversed(messages):
        if m.role != "user":
            continue
        if isinstance(m.content, str):
            return m.content
        return " ".join(str(p.get("text", "")) for p in m.content or [] if p.get("type") == "text")
    raise ApiError(400, "messages: no message with role 'user'; send the question as the last user message")


def chat_text(answer: Answer) -> str:
    """The answer with its [n] markers, then a numbered source list (one paragraph each, for Markdown).

    Example: 'Give 5 mg daily [1].' + one citation -> 'Give 5 mg daily [1].\\n\\nSources:\\n\\n[1] Title (2024), p.3,
    Dosing: "Give 5 mg daily."'
    """
    lines = [answer.text]
    if answer.citations:
        lines.append("Sources:")
    for c in answer.citations:
        ch, d = c.hit.chunk, c.hit.doc
        status = "" if d.status == "current" else f", {d.status}"
        printed = f" [printed {ch.page_label}]" if ch.page_label and ch.page_label != str(ch.page) else ""
        section = f", {ch.section}" if ch.section else ""
        lines.append(f'[{c.n}] {d.title} ({d.version}{status}), p.{ch.page}{printed}{section}: "{c.quote}"')
    return "\n\n".join(lines)


def _extra(answer: Answer) -> dict:
    """The fields beyond OpenAI's: the structured citations and what the answer was made from."""
    data = answer.to_json()
    return {"citations": data["citations"], "abstained": answer.abstained, "index_version": answer.index_version}


@router.post("/v1/chat/completions", summary="OpenAI-compatible chat: the last user message is the question")
def chat_completions(body: ChatBody, who: Reader, request: Request):
    if body.model != MODEL:
        raise ApiError(404, f"model {body.model!r} is not served here; use {MODEL!r} (GET /v1/models)")
    question = last_question(body.messages)
    # the whole answer is made (and its citations verified) before anything is sent, also when streamed
    qa = request.app.state.qa
    answer = qa.answer(question)
    _answered(qa, answer, who)
    cid, created, text = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), chat_text(answer)
    if body.stream:
        return StreamingResponse(_chunks(cid, created, text, _extra(answer)), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    return {"id": cid, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            **_extra(answer)}


def _chunks(cid: str, created: int, text: str, extra: dict) -> Iterator[str]:
    """OpenAI's chunk events: the role, the text a line at a time, the stop (with the citations), [DONE]."""
    def event(delta: dict, finish: str | None = None, **more: object) -> str:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in text.splitlines(keepends=True):
        yield event({"content": piece})
    yield event({}, "stop", **extra)
    yield "data: [DONE]\n\n"


def _model(created: float) -> dict:
    return {"id": MODEL, "object": "model", "created": int(created), "owned_by": "guideline-qa"}


@router.get("/v1/models", summary="The one model served: guideline-qa")
def models(who: Reader, request: Request) -> dict:
    return {"object": "list", "data": [_model(request.app.state.started)]}


@router.get("/v1/models/{model_id}", summary="One model")
def model(model_id: Annotated[str, PathParam(max_length=200)], who: Reader, request: Request) -> dict:
    if model_id != MODEL:
        raise ApiError(404, f"model {model_id!r} is not served here; use {MODEL!r}")
    return _model(request.app.state.started)
