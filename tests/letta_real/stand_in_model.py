"""A tiny OpenAI-compatible model server on 127.0.0.1 for a real Letta server (stdlib only).

Letta 0.16.8 is pointed at it with ``OPENAI_API_KEY=<anything>`` and
``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1``; it then lists the model below as
``openai-proxy/<MODEL>`` (an agent is created with that ``model`` handle).

Endpoints:

* ``GET /v1/models``: one model, :data:`MODEL`.
* ``POST /v1/chat/completions`` (plain and ``stream: true``): a deterministic reply,
  ``"stand-in reply: <last user text>"``.  When the request offers a ``send_message``
  tool (memgpt-style agents) the reply is a call to that tool, its required arguments
  filled in; otherwise (``letta_v1_agent``, Letta's default) plain assistant content.
* ``POST /v1/embeddings``: deterministic unit vectors (``dimensions`` or 1536 wide).

Every chat request body is kept in :attr:`StandInModel.requests` for assertions.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "stand-in-model"
REPLY_PREFIX = "stand-in reply: "


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            text = _text_of(message.get("content"))
            # memgpt-style agents wrap user input as JSON: {"type": "user_message", "message": ...}
            try:
                packed = json.loads(text)
            except (ValueError, TypeError):
                return text
            if isinstance(packed, dict) and "message" in packed:
                return str(packed["message"])
            return text
    return ""


def _fill_arguments(parameters: dict[str, Any], reply: str) -> dict[str, Any]:
    props: dict[str, Any] = parameters.get("properties", {}) or {}
    args: dict[str, Any] = {}
    for name in parameters.get("required", list(props)) or []:
        kind = (props.get(name) or {}).get("type")
        if name == "message":
            args[name] = reply
        elif kind == "boolean":
            args[name] = False
        elif kind in ("integer", "number"):
            args[name] = 0
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = "stand-in"
    args.setdefault("message", reply)
    return args


def build_reply(body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Return (content, tool_calls) for a chat-completions request body."""
    reply = REPLY_PREFIX + last_user_text(body.get("messages", []))
    for tool in body.get("tools") or []:
        fn = tool.get("function") or {}
        if fn.get("name") == "send_message":
            args = _fill_arguments(fn.get("parameters") or {}, reply)
            call_id = "call_" + hashlib.sha256(reply.encode()).hexdigest()[:20]
            return None, [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "send_message", "arguments": json.dumps(args)},
                }
            ]
    return reply, None


def _embedding(text: str, dims: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    raw = [((seed[i % len(seed)] + i * 7) % 251) / 251.0 - 0.5 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            super().log_message(format, *args)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": MODEL, "object": "model", "created": 0, "owned_by": "stand-in"}
                    ],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        body = self._body()
        if path in ("/v1/chat/completions", "/chat/completions"):
            with self.server.owner.lock:
                self.server.owner.requests.append(body)
            self._chat(body)
        elif path in ("/v1/embeddings", "/embeddings"):
            inputs = body.get("input", [])
            if isinstance(inputs, str):
                inputs = [inputs]
            dims = int(body.get("dimensions") or 1536)
            self._json(
                200,
                {
                    "object": "list",
                    "model": body.get("model", MODEL),
                    "data": [
                        {"object": "embedding", "index": i, "embedding": _embedding(str(t), dims)}
                        for i, t in enumerate(inputs)
                    ],
                    "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, body: dict[str, Any]) -> None:
        content, tool_calls = build_reply(body)
        created = int(time.time())
        cid = (
            "chatcmpl-stand-in-"
            + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
        )
        model = body.get("model") or MODEL
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        finish = "tool_calls" if tool_calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if tool_calls:
                message["tool_calls"] = tool_calls
            self._json(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return
        delta: dict[str, Any] = {"role": "assistant"}
        if tool_calls:
            delta["tool_calls"] = [dict(tc, index=i) for i, tc in enumerate(tool_calls)]
        else:
            delta["content"] = content
        chunks = [
            {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
            {"choices": [], "usage": usage},
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in chunks:
            chunk.update(
                {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
            )
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: StandInModel


class StandInModel:
    """The stand-in server; ``with StandInModel() as m: m.base_url`` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        self.verbose = verbose
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> StandInModel:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="stand-in-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandInModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    ns = parser.parse_args()
    model = StandInModel(port=ns.port, verbose=True).start()
    print(f"stand-in model at {model.base_url} (model id {MODEL!r})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        model.stop()
