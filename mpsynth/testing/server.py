"""A local HTTP server speaking provider wire formats, with injectable faults, so that tests and
benchmarks run the real SDK clients end to end."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mpsynth.providers.output import estimate_tokens
from mpsynth.testing.answers import (
    Fault,
    ServerLog,
    TokenBucket,
    find_schema,
    hashed_embedding,
    scripted_posts,
)
from mpsynth.testing.batches import BatchEndpoints


class _Listener(ThreadingHTTPServer):
    """A thread per connection, and a backlog for hundreds opened at once (the default is 5)."""

    daemon_threads = True
    request_queue_size = 1024


class FakeProviderServer:
    """A local HTTP server speaking the OpenAI (chat completions, embeddings), Anthropic (messages)
    and Gemini (generateContent) wire formats, so tests and benchmarks run the real SDK clients.

    It answers as a scripted model (see `scripted_posts`), counts tokens with `estimate_tokens`,
    can hold every answer for `latency_s` (seconds, or a function drawing them), enforce `requests_per_minute` with 429s carrying
    Retry-After, and serve queued faults (see `Fault`) one per request, in arrival order (and a 500
    to every request `failing` picks). With
    `state_limits` (and a limit), OpenAI and Anthropic answers carry that provider's rate-limit
    headers, as the real services send them. The batch endpoints (see `BatchEndpoints`) answer a
    batch `batch_delay_s` after it is created; each answered item is logged like a live request,
    with `batch` set to its batch's id.
    """

    def __init__(
        self,
        api_key: str = "test-key",
        dimensions: int = 64,
        latency_s: float | Callable[[], float] = 0.0,
        requests_per_minute: float | None = None,
        state_limits: bool = True,
        batch_delay_s: float = 0.2,
        log_bodies: bool = True,
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        # False: the log keeps each request's digest, not its body (a run of 100,000 requests)
        self.log_bodies = log_bodies
        # a request this returns True for is answered 500 (a prompt that fails persistently)
        self.failing: Callable[[dict[str, Any]], bool] | None = None
        self.state_limits = state_limits
        self.dimensions = dimensions
        self.latency_s = latency_s
        self.limiter = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.faults: deque[Fault] = deque()
        self.log = ServerLog()
        self.batches = BatchEndpoints(self._batch_answer, lambda: self.root_url, batch_delay_s)
        self._server = _Listener(("127.0.0.1", port), self._handler())  # 0: any free port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (with /v1); Anthropic and Gemini clients take `root_url`."""
        return f"{self.root_url}/v1"

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def __enter__(self) -> FakeProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def statuses(self) -> Counter:
        with self.log.lock:
            return Counter(r["status"] for r in self.log.requests)

    def _next_fault(self) -> Fault | None:
        try:
            return self.faults.popleft()
        except IndexError:
            return None

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or self.dimensions
        tokens = sum(estimate_tokens(t) for t in inputs)
        return {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": hashed_embedding(text, dimensions)}
                for i, text in enumerate(inputs)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @staticmethod
    def _prompt_texts(kind: str, body: dict[str, Any]) -> list[str]:
        match kind:
            case "openai":
                return [m["content"] for m in body["messages"]]
            case "anthropic":
                return ([body["system"]] if body.get("system") else []) + [
                    m["content"] for m in body["messages"]
                ]
            case "gemini":
                system = body.get("systemInstruction") or body.get("system_instruction") or {}
                parts = [p["text"] for p in system.get("parts", [])]
                return parts + [p["text"] for c in body["contents"] for p in c["parts"]]
        raise ValueError(kind)

    def _chat(
        self, kind: str, body: dict[str, Any], fault: Fault | None, entry: dict[str, Any]
    ) -> dict[str, Any]:
        texts = self._prompt_texts(kind, body)
        prompt = "\n".join(texts)
        content = json.dumps(
            {"posts": scripted_posts(prompt, find_schema(body))}, ensure_ascii=False
        )
        stopped = "stop"
        if fault is not None and fault.content is not None:
            content = fault.content
        if fault is not None and fault.truncate:
            content, stopped = content[: len(content) // 2], "length"
        limit = _max_tokens(kind, body)
        if limit is not None and estimate_tokens(content) > limit:  # as a model stops at its limit
            while content and estimate_tokens(content) > limit:
                content = content[: int(len(content) * 0.9)]
            stopped = "length"
        prompt_tokens = sum(estimate_tokens(t) for t in texts)
        completion_tokens = estimate_tokens(content)
        entry.update(
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=stopped
        )
        with self.log.lock:
            self.log.usage.update(
                prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, answered=1
            )
        match kind:
            case "openai":
                return {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": stopped,
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            case "anthropic":
                return {
                    "id": "msg_test",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": [{"type": "text", "text": content}],
                    "stop_reason": "end_turn" if stopped == "stop" else "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
                }
            case _:
                return {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": [{"text": content}]},
                            "finishReason": "STOP" if stopped == "stop" else "MAX_TOKENS",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": prompt_tokens,
                        "candidatesTokenCount": completion_tokens,
                        "totalTokenCount": prompt_tokens + completion_tokens,
                    },
                    "modelVersion": "test",
                }

    def _batch_answer(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        entry = {"path": "batch", "kind": kind, "body": body, "status": 200, "batch": True}
        entry["received_at"] = time.time()
        with self.log.lock:
            self.log.requests.append(entry)
        return self._chat(kind, body, None, entry)

    def _route(self, path: str) -> str | None:
        path = path.split("?")[0].rstrip("/")
        if path.endswith("/embeddings"):
            return "embeddings"
        if path.endswith("/chat/completions"):
            return "openai"
        if path.endswith("/v1/messages"):
            return "anthropic"
        if path.endswith(":generateContent"):
            return "gemini"
        return None

    def _authorised(self, kind: str, headers: Any, path: str) -> bool:
        match kind:
            case "anthropic":  # x-api-key, or a bearer token as recent SDKs send
                return self.api_key in (
                    headers.get("x-api-key"),
                    (headers.get("Authorization") or "").removeprefix("Bearer "),
                )
            case "gemini":
                return (
                    headers.get("x-goog-api-key") == self.api_key or f"key={self.api_key}" in path
                )
            case _:
                return headers.get("Authorization") == f"Bearer {self.api_key}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
            # headers and body go out as two writes: without TCP_NODELAY the body waits ~40 ms
            # for the client's delayed ACK (Nagle), adding a fixed stall to every answer
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(
                self,
                status: int,
                payload: str | bytes,
                headers: dict[str, str] | None = None,
                content_type: str = "application/json",
            ) -> None:
                data = payload if isinstance(payload, bytes) else payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                # the client may have given up first (an injected timeout)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)
                with server.log.lock:
                    self.entry["status"] = status

            def _batch(self, method: str, raw: bytes) -> bool:
                """Serve a batch route; False when the path is not one."""
                kind = BatchEndpoints.kind_of(self.path, self.headers)
                if kind is None:
                    return False
                self.entry = {"path": self.path, "kind": f"{kind}-batch", "status": None}
                if not server._authorised(kind, self.headers, self.path):
                    self._send(401, json.dumps({"error": {"message": "invalid api key"}}))
                    return True
                reply = server.batches.handle(method, self.path, self.headers, raw)
                self._send(reply.status, reply.body, content_type=reply.content_type)
                return True

            def do_GET(self) -> None:
                if not self._batch("GET", b""):
                    self.entry = {"status": None}
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self._batch("POST", raw):
                    return
                body = json.loads(raw or b"{}")
                kind = server._route(self.path)
                fault = server._next_fault()
                if fault is None and server.failing is not None and server.failing(body):
                    fault = Fault(500)
                self.entry = {
                    "path": self.path,
                    "kind": kind,
                    "body": body if server.log_bodies else None,
                    "digest": hashlib.blake2b(raw, digest_size=12).hexdigest(),
                    "status": None,
                    "authorised": server._authorised(kind or "", self.headers, self.path),
                    "fault": fault.status if fault else None,
                    "fault_kind": fault.kind if fault else None,
                    "received_at": time.time(),
                }
                with server.log.lock:
                    server.log.requests.append(self.entry)
                latency = server.latency_s() if callable(server.latency_s) else server.latency_s
                time.sleep(latency + (fault.delay_s if fault else 0.0))
                if fault is not None and (fault.status != 200 or fault.body is not None):
                    headers = (
                        {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                    )
                    error = {
                        "error": {
                            "message": f"injected {fault.status}",
                            "type": "test",
                            "code": fault.status,
                        }
                    }
                    self._send(
                        fault.status,
                        json.dumps(error) if fault.body is None else fault.body,
                        headers,
                    )
                    return
                limits = (
                    server.limiter.headers(kind)
                    if server.limiter is not None and server.state_limits
                    else {}
                )
                if server.limiter is not None and (wait := server.limiter.take()) is not None:
                    error = {
                        "error": {"message": "rate limit", "type": "rate_limit_error", "code": 429}
                    }
                    self._send(429, json.dumps(error), {"Retry-After": f"{wait:.3f}", **limits})
                    return
                if kind is None:
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))
                elif not self.entry["authorised"]:
                    self._send(
                        401,
                        json.dumps(
                            {
                                "error": {
                                    "message": "invalid api key",
                                    "type": "authentication_error",
                                    "code": 401,
                                }
                            }
                        ),
                    )
                elif kind == "embeddings":
                    self._send(200, json.dumps(server._embeddings(body)))
                else:
                    self._send(200, json.dumps(server._chat(kind, body, fault, self.entry)), limits)

        return Handler


def _max_tokens(kind: str, body: dict[str, Any]) -> int | None:
    """The answer's token limit the request set, in its provider's field."""
    if kind == "gemini":
        return (body.get("generationConfig") or {}).get("maxOutputTokens")
    return body.get("max_tokens") or body.get("max_completion_tokens")
