"""What the fake provider server answers with: posts scripted from the prompt (as many as it asks
for, on the platforms it names, in the JSON shape it requests), embeddings hashed from the text,
injectable faults, rate-limit headers from a token bucket, and the log of every request."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np


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
    """One injected misbehaviour, served to the next request: an HTTP `status` (429, 500, ...) with
    an optional Retry-After, a `delay_s` before answering (a timeout when longer than the client's),
    a raw HTTP `body` (any text or bytes, sent as it is, even empty), a model output `content` replacing the answer (malformed JSON), or a
    `truncate`d answer cut in half and flagged as stopped by the token limit."""

    status: int = 200
    retry_after: float | None = None
    delay_s: float = 0.0
    body: str | bytes | None = None
    content: str | None = None
    truncate: bool = False

    @property
    def kind(self) -> str:
        if self.status != 200:
            return "status"
        if self.body is not None:
            return "body"
        if self.delay_s:
            return "delay"
        return "truncate" if self.truncate else "content"


@dataclass
class ServerLog:
    requests: list[dict[str, Any]] = field(default_factory=list)
    usage: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class TokenBucket:
    """Server-side rate limit: `per_minute` requests with one second of burst."""

    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float | None:
        """None when allowed, else the seconds until a request would be."""
        with self.lock:
            now = time.monotonic()
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now
            if self.level >= 1.0:
                self.level -= 1.0
                return None
            return (1.0 - self.level) / self.rate

    def headers(self, kind: str | None) -> dict[str, str]:
        """The limit, what is left of it and when it is whole again, in `kind`'s headers."""
        with self.lock:
            per_minute = self.rate * 60.0
            remaining = int(self.level / self.capacity * per_minute)
            full_in = (self.capacity - self.level) / self.rate
        match kind:
            case "openai":
                return {
                    "x-ratelimit-limit-requests": f"{per_minute:.0f}",
                    "x-ratelimit-remaining-requests": str(remaining),
                    "x-ratelimit-reset-requests": f"{full_in * 1000:.0f}ms",
                }
            case "anthropic":
                reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + full_in))
                return {
                    "anthropic-ratelimit-requests-limit": f"{per_minute:.0f}",
                    "anthropic-ratelimit-requests-remaining": str(remaining),
                    "anthropic-ratelimit-requests-reset": reset,
                }
        return {}  # Gemini states no limits in its headers


def find_schema(node: Any) -> dict | None:
    """The posts schema wherever a wire format nests it."""
    if isinstance(node, dict):
        if "properties" in node and "posts" in node.get("properties", {}):
            return node
        for value in node.values():
            found = find_schema(value)
            if found is not None:
                return found
    return None


_TARGETS = re.compile(
    r"Write (\d+) new posts for (?:each of these platforms: )?([\w, ]+?)(?: that|\.|$)", re.M
)


_EXAMPLE = re.compile(r"^\[(\w+)\] (.+)$", re.M)


def scripted_posts(prompt: str, schema: dict | None) -> list[dict[str, str]]:
    """A scripted model: the platforms and count the schema (or the prompt) asks for; each post a
    deterministic draw of words from the prompt, as many as a real example of that platform has."""
    if schema is not None:
        posts = schema["properties"]["posts"]
        platforms = posts["items"]["properties"]["platform"]["enum"]
        per_platform = posts["minItems"] // max(1, len(platforms))
    else:
        match = _TARGETS.search(prompt)
        per_platform = int(match.group(1)) if match else 1
        platforms = [p.strip() for p in match.group(2).split(",")] if match else ["twitter"]
    words = re.findall(r"[#@]?\w+", prompt) or ["post"]
    examples: dict[str, list[int]] = {}
    for platform, text in _EXAMPLE.findall(prompt):
        examples.setdefault(platform, []).append(len(text.split()))
    out = []
    for platform in platforms:
        lengths = examples.get(platform) or [n for v in examples.values() for n in v] or [10]
        for k in range(per_platform):
            digest = hashlib.sha256(f"{prompt}|{platform}|{k}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            count = max(1, int(lengths[int(rng.integers(0, len(lengths)))]))
            out.append({"platform": platform, "text": " ".join(rng.choice(words, count))})
    return out
