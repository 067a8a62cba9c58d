"""A scripted model server the tests run in-process: it speaks the OpenAI chat-completions
protocol (`POST /v1/chat/completions`) and Ollama's (`POST /api/chat`, NDJSON), so the real
`langchain-openai` and `langchain-ollama` clients are exercised end to end. LLMs are the one
thing tests script (the Temporal server is real)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.receivers import serving


class ModelServer:
    """Replies are played in order: each `(status, message)`; `message` is
    `{content, tool_calls: [{name, args}]}` for status 200, an error text otherwise."""

    def __init__(self, replies: list[tuple[int, Any]]) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # names lower-cased
        self.lock = threading.Lock()
        self.url = ""

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            if not self.replies:
                return 500, "the test's script has no more replies"
            return self.replies.pop(0)


def _openai(message: dict[str, Any], model: str) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c.get("args", {}))},
        }
        for i, c in enumerate(message.get("tool_calls") or [])
    ]
    reply: dict[str, Any] = {"role": "assistant", "content": message.get("content") or None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": reply, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
    }


def _ollama(message: dict[str, Any], model: str) -> dict[str, Any]:
    calls = [
        {"function": {"name": c["name"], "arguments": c.get("args", {})}}
        for c in message.get("tool_calls") or []
    ]
    return {
        "model": model,
        "created_at": "2026-11-26T00:00:00Z",
        "message": {
            "role": "assistant",
            "content": message.get("content", ""),
            "tool_calls": calls,
        },
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 42,
        "eval_count": 7,
    }


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            status, message = server.next_reply(body, dict(self.headers))
            model = str(body.get("model", ""))
            if status != 200:
                payload = {"error": {"message": str(message), "type": "test", "code": status}}
                if self.path == "/api/chat":
                    payload = {"error": str(message)}
                data = json.dumps(payload).encode()
                content_type = "application/json"
            elif self.path == "/api/chat":
                data = (json.dumps(_ollama(message, model)) + "\n").encode()
                content_type = "application/x-ndjson"
            else:
                data = json.dumps(_openai(message, model)).encode()
                content_type = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def model_server(replies: list[tuple[int, Any]]) -> Iterator[ModelServer]:
    """A scripted model server on a free local port; `.url` is its base URL."""
    server = ModelServer(replies)
    with serving(_handler(server)) as url:
        server.url = url
        yield server
