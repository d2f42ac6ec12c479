"""Test helpers shipped with the package, for mpsynth's tests and for users testing their own set-up
offline: a tiny sentence-transformers model built from a corpus, and a local server that speaks
provider wire formats with injectable faults."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_sentence_transformer(
    path: Path, texts: list[str], hidden_size: int = 32, vocab_size: int = 2000, seed: int = 0
) -> Path:
    """Save a small randomly initialised BERT with a WordPiece vocabulary drawn from `texts`, wrapped
    as a sentence-transformers model (mean pooling), and return its path. Loading it by path
    exercises the same code as any hub model, with nothing downloaded."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    words = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    chars = sorted({c for w in words for c in w})
    vocab = [*SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]
    vocab += [w for w, _ in words.most_common(max(0, vocab_size - len(vocab))) if w not in vocab]
    bert_dir = Path(path) / "bert"
    bert_dir.mkdir(parents=True, exist_ok=True)
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt"), do_lower_case=True).save_pretrained(
        bert_dir
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert_dir)
    transformer = models.Transformer(str(bert_dir), max_seq_length=128)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model_dir = Path(path) / "model"
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(model_dir))
    return model_dir


def hashed_embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic bag-of-hashed-words vector: texts sharing words point the same way."""
    vector = np.zeros(dimensions)
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest[:4], "little") % dimensions] += 1 if digest[4] & 1 else -1
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).tolist()


@dataclass
class Fault:
    """One injected misbehaviour: `status` (e.g. 429, 500) with optional Retry-After, `delay_s`
    before answering (a timeout when longer than the client's), or `body` sent as-is."""

    status: int = 200
    retry_after: float | None = None
    delay_s: float = 0.0
    body: str | None = None


@dataclass
class ServerLog:
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeProviderServer:
    """A local HTTP server speaking the OpenAI embeddings wire format (`POST /v1/embeddings`).

    Faults queued with `inject` are served first, one per request, in order. Every request is
    logged with its path, body and whether it carried the expected bearer key.
    """

    def __init__(self, api_key: str = "test-key", dimensions: int = 64) -> None:
        self.api_key = api_key
        self.dimensions = dimensions
        self.faults: deque[Fault] = deque()
        self.log = ServerLog()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def inject(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def __enter__(self) -> FakeProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> Fault | None:
        try:
            return self.faults.popleft()
        except IndexError:
            return None

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = body.get("dimensions") or self.dimensions
        return {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": hashed_embedding(text, dimensions)}
                for i, text in enumerate(inputs)
            ],
            "usage": {
                "prompt_tokens": sum(len(t.split()) for t in inputs),
                "total_tokens": sum(len(t.split()) for t in inputs),
            },
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(
                self, status: int, payload: str, headers: dict[str, str] | None = None
            ) -> None:
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                authorised = self.headers.get("Authorization") == f"Bearer {server.api_key}"
                fault = server._next_fault()
                with server.log.lock:
                    server.log.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "authorised": authorised,
                            "fault": fault.status if fault else None,
                        }
                    )
                if fault is not None:
                    time.sleep(fault.delay_s)
                    if fault.status != 200 or fault.body is not None:
                        headers = {}
                        if fault.retry_after is not None:
                            headers["Retry-After"] = str(fault.retry_after)
                        error = {"error": {"message": f"injected {fault.status}", "type": "test"}}
                        self._send(fault.status, fault.body or json.dumps(error), headers)
                        return
                if not authorised:
                    self._send(
                        401, json.dumps({"error": {"message": "invalid api key", "type": "auth"}})
                    )
                elif self.path.rstrip("/").endswith("/embeddings"):
                    self._send(200, json.dumps(server._embeddings(body)))
                else:
                    self._send(404, json.dumps({"error": {"message": f"no route {self.path}"}}))

        return Handler
