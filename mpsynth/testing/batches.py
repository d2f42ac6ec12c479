"""The providers' batch endpoints, as FakeProviderServer serves them: OpenAI's Files + Batch API,
Anthropic's Message Batches and Gemini's batch mode (inline requests). A batch is answered item by
item with the server's own chat answers once `delay_s` has passed since it was created (worked out
when it is next looked at, so no thread runs behind the tests' backs)."""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = Callable[[str, dict[str, Any]], dict[str, Any]]  # (kind, request body) -> response body


@dataclass
class FakeBatch:
    id: str
    kind: str  # openai | anthropic | gemini
    items: list[tuple[str, dict[str, Any]]]  # (custom id, request body)
    created_at: float
    ready_at: float
    meta: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] | None = None  # each item's answer once processed


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str = "application/json"


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class BatchEndpoints:
    """Routes: POST /v1/files, GET /v1/files/{id}/content, POST|GET /v1/batches[/{id}],
    POST /v1/messages/batches, GET /v1/messages/batches/{id}[/results],
    POST /v1beta/models/{model}:batchGenerateContent, GET /v1beta/batches[/{id}]."""

    def __init__(self, answer: Answer, root_url: Callable[[], str], delay_s: float) -> None:
        self.answer = answer
        self.root_url = root_url
        self.delay_s = delay_s
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.created: list[str] = []  # batch ids in creation order
        self.answered: list[tuple[str, str]] = []  # (batch id, custom id) of every item answered
        # request id -> what its item's answer is replaced with (an answer of the wrong shape)
        self.malformed: dict[str, Any] = {}
        self.lock = threading.Lock()

    @staticmethod
    def kind_of(path: str, headers: Any) -> str | None:
        """The provider a batch route belongs to, or None for a route that is not one. Gemini and
        OpenAI share `/v1/batches`: Gemini's client is told apart by its key header."""
        path = path.split("?")[0].rstrip("/")
        if re.match(r"^/v1[a-z0-9]*/messages/batches", path):
            return "anthropic"
        gemini = headers.get("x-goog-api-key") is not None or "key=" in path
        if path.endswith(":batchGenerateContent") or (
            gemini and re.match(r"^/v1[a-z0-9]*/batches", path)
        ):
            return "gemini"
        if re.match(r"^/v1/(files|batches)", path):
            return "openai"
        return None

    def handle(self, method: str, path: str, headers: Any, raw: bytes) -> Reply:
        kind = self.kind_of(path, headers)
        path = path.split("?")[0].rstrip("/")
        with self.lock:
            try:
                if kind == "gemini":
                    return self._route_gemini(method, path.strip("/").split("/")[1:], raw)
                return self._route(method, path, headers, raw)
            except KeyError as missing:
                return Reply(404, json.dumps({"error": {"message": f"not found: {missing}"}}))

    def _route(self, method: str, path: str, headers: Any, raw: bytes) -> Reply:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "files"]:
                return self._upload(headers, raw)
            case "GET", ["v1", "files", file_id, "content"]:
                return Reply(200, self.files[file_id].decode(), "application/octet-stream")
            case "POST", ["v1", "batches"]:
                return self._create_openai(json.loads(raw))
            case "GET", ["v1", "batches"]:
                data = [self._openai(self._ready(b)) for b in self._of("openai")][::-1]
                return Reply(200, json.dumps({"object": "list", "data": data, "has_more": False}))
            case "GET", ["v1", "batches", batch_id]:
                return Reply(200, json.dumps(self._openai(self._ready(self.batches[batch_id]))))
            case "POST", ["v1", "messages", "batches"]:
                body = json.loads(raw)
                items = [(r["custom_id"], r["params"]) for r in body["requests"]]
                batch = self._new("anthropic", items, {}, "msgbatch_")
                return Reply(200, json.dumps(self._anthropic(batch)))
            case "GET", ["v1", "messages", "batches", batch_id]:
                return Reply(200, json.dumps(self._anthropic(self._ready(self.batches[batch_id]))))
            case "GET", ["v1", "messages", "batches", batch_id, "results"]:
                batch = self._ready(self.batches[batch_id])
                lines = [json.dumps(r) for r in batch.results or []]
                return Reply(200, "\n".join(lines) + "\n", "application/binary")
        return Reply(404, json.dumps({"error": {"message": f"no batch route {method} {path}"}}))

    def _route_gemini(self, method: str, parts: list[str], raw: bytes) -> Reply:
        """Gemini's routes, after the API version (v1, v1beta)."""
        match method, parts:
            case "POST", ["models", target] if target.endswith(":batchGenerateContent"):
                return self._create_gemini(target.split(":")[0], json.loads(raw))
            case "GET", ["batches"]:
                jobs = [self._gemini(self._ready(b)) for b in self._of("gemini")]
                return Reply(200, json.dumps({"operations": jobs}))
            case "GET", ["batches", batch_id]:
                return Reply(200, json.dumps(self._gemini(self._ready(self.batches[batch_id]))))
        return Reply(404, json.dumps({"error": {"message": f"no batch route {method} {parts}"}}))

    def _of(self, kind: str) -> list[FakeBatch]:
        return [self.batches[i] for i in self.created if self.batches[i].kind == kind]

    def _new(self, kind: str, items: list[tuple[str, dict]], meta: dict, prefix: str) -> FakeBatch:
        now = time.time()
        batch = FakeBatch(f"{prefix}{uuid.uuid4().hex[:16]}", kind, items, now, now + self.delay_s)
        batch.meta = meta
        self.batches[batch.id] = batch
        self.created.append(batch.id)
        return batch

    def _ready(self, batch: FakeBatch) -> FakeBatch:
        """Answer every item of a batch whose time has come, once."""
        if batch.results is None and time.time() >= batch.ready_at:
            batch.results = []
            for custom_id, body in batch.items:
                response = self.answer(batch.kind, body)
                request_id = custom_id
                if batch.kind == "gemini":
                    request_id = (batch.meta["metadata"][int(custom_id)] or {}).get("request_id")
                response = self.malformed.get(request_id, response)
                self.answered.append((batch.id, custom_id))
                batch.results.append(self._result(batch, custom_id, response))
            if batch.kind == "openai":
                output = "\n".join(json.dumps(r) for r in batch.results) + "\n"
                self.files[f"file-out-{batch.id}"] = output.encode()
        return batch

    # OpenAI -------------------------------------------------------------------------------------

    def _upload(self, headers: Any, raw: bytes) -> Reply:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode() + raw
        )
        fields = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        content = fields["file"].get_payload(decode=True)
        file_id = f"file-{uuid.uuid4().hex[:16]}"
        self.files[file_id] = content
        filename = fields["file"].get_filename() or "batch.jsonl"
        purpose = fields["purpose"].get_content().strip()
        return Reply(
            200,
            json.dumps(
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": filename,
                    "purpose": purpose,
                    "status": "processed",
                }
            ),
        )

    def _create_openai(self, body: dict) -> Reply:
        lines = self.files[body["input_file_id"]].decode().splitlines()
        items = []
        for line in filter(None, lines):
            item = json.loads(line)
            if item.get("url") != body["endpoint"]:
                return Reply(400, json.dumps({"error": {"message": "url differs from endpoint"}}))
            items.append((item["custom_id"], item["body"]))
        meta = {"input_file_id": body["input_file_id"], "metadata": body.get("metadata")}
        batch = self._new("openai", items, meta, "batch_")
        return Reply(200, json.dumps(self._openai(batch)))

    def _openai(self, batch: FakeBatch) -> dict:
        done = batch.results is not None
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "input_file_id": batch.meta["input_file_id"],
            "completion_window": "24h",
            "status": "completed" if done else "in_progress",
            "created_at": int(batch.created_at),
            "output_file_id": f"file-out-{batch.id}" if done else None,
            "error_file_id": None,
            "metadata": batch.meta.get("metadata"),
            "request_counts": {
                "total": len(batch.items),
                "completed": len(batch.items) if done else 0,
                "failed": 0,
            },
        }

    # Anthropic ----------------------------------------------------------------------------------

    def _anthropic(self, batch: FakeBatch) -> dict:
        done = batch.results is not None
        n = len(batch.items)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if done else "in_progress",
            "request_counts": {
                "processing": 0 if done else n,
                "succeeded": n if done else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + 86400),
            "ended_at": _iso(batch.ready_at) if done else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.root_url()}/v1/messages/batches/{batch.id}/results"
            if done
            else None,
        }

    # Gemini -------------------------------------------------------------------------------------

    def _create_gemini(self, model: str, body: dict) -> Reply:
        config = body["batch"]
        requests = config["inputConfig"]["requests"]["requests"]
        items = [(str(i), r["request"]) for i, r in enumerate(requests)]
        meta = {
            "model": f"models/{model}",
            "displayName": config.get("displayName"),
            "metadata": [r.get("metadata") for r in requests],
        }
        batch = self._new("gemini", items, meta, "")
        return Reply(200, json.dumps(self._gemini(batch)))

    def _gemini(self, batch: FakeBatch) -> dict:
        done = batch.results is not None
        metadata = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": batch.meta["model"],
            "displayName": batch.meta["displayName"],
            "state": "BATCH_STATE_SUCCEEDED" if done else "BATCH_STATE_RUNNING",
            "createTime": _iso(batch.created_at),
        }
        if done:
            metadata["endTime"] = _iso(batch.ready_at)
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": batch.results}}
        return {"name": f"batches/{batch.id}", "metadata": metadata, "done": done}

    def _result(self, batch: FakeBatch, custom_id: str, response: dict) -> dict:
        match batch.kind:
            case "openai":
                return {
                    "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                    "custom_id": custom_id,
                    "response": {"status_code": 200, "request_id": custom_id, "body": response},
                    "error": None,
                }
            case "anthropic":
                return {
                    "custom_id": custom_id,
                    "result": {"type": "succeeded", "message": response},
                }
            case _:
                result: dict[str, Any] = {"response": response}
                metadata = batch.meta["metadata"][int(custom_id)]
                if metadata:
                    result["metadata"] = metadata
                return result
