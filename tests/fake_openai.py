"""A scripted OpenAI-compatible chat server for tests: replies from a queue, records every request.

It speaks just enough of the wire format (POST /v1/chat/completions, also /chat/completions) for the
real `openai` client inside llama-index's OpenAILike to talk to it, so the tests exercise the real
client, the real prompt and the real verification. Replies never depend on the prompt's wording
(style: scripted fakes, not mocks that pattern-match prompts).

    with FakeOpenAIServer() as server:
        server.enqueue("Give 10 mg daily [1].")
        ... OpenAIGenerator(server.base_url, "fake-model", "key") ...
        server.requests[0]["body"]["messages"]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class Failure:
    """A scripted HTTP error reply (e.g. 404 'model not found', 500)."""

    status: int
    message: str = "scripted failure"


class FakeOpenAIServer:
    """http.server on 127.0.0.1 in a daemon thread; `enqueue` answers, `requests` records."""

    def __init__(self) -> None:
        self.replies: deque[str | Failure] = deque()
        self.requests: list[dict] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval makes shutdown() (once per test) return in milliseconds, not 0.5 s.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        """The API base the client is given (the /v1 prefix, as vLLM and Ollama serve it)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def enqueue(self, *replies: str | Failure) -> None:
        """Script the next replies, in order."""
        self.replies.extend(replies)

    def prompts(self) -> list[str]:
        """The text of the last user message of every request received."""
        return [[m for m in r["body"]["messages"] if m["role"] == "user"][-1]["content"] for r in self.requests]

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if self.path not in PATHS:
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if not server.replies:
                return self._send(500, {"error": {"message": "fake server: no scripted reply left"}})
            reply = server.replies.popleft()
            if isinstance(reply, Failure):
                return self._send(reply.status, {"error": {"message": reply.message, "type": "fake"}})
            self._send(200, _completion(body.get("model", ""), reply))

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _completion(model: str, content: str) -> dict:
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
