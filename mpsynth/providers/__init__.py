"""Generation backends behind one small protocol: a request (chat messages, sampling parameters and
what the request is for) in, a completion (text, token counts, finish reason) out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mpsynth.config import MarkovProviderConfig


@dataclass(frozen=True)
class GenerationRequest:
    request_id: str
    strategy: str
    topic: int | None
    target_platforms: list[str]
    posts_per_platform: int
    example_ids: list[str]
    messages: list[dict[str, str]]
    params: dict[str, Any]
    seed: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> GenerationRequest:
        return cls(
            request_id=row["request_id"],
            strategy=row["strategy"],
            topic=row["topic"],
            target_platforms=list(row["target_platforms"]),
            posts_per_platform=row["posts_per_platform"],
            example_ids=list(row["example_ids"]),
            messages=list(row["messages"]),
            params=json.loads(row["params_json"]),
            seed=row["seed"],
        )


@dataclass(frozen=True)
class RealCorpus:
    """Where a run keeps its real posts and their topic assignments."""

    posts: Path
    assignments: Path


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Provider(Protocol):
    kind: str
    model: str

    async def complete(self, request: GenerationRequest) -> Completion: ...


def build_provider(config: MarkovProviderConfig, corpus: RealCorpus) -> Provider:
    """The backend a config names; the offline baseline trains on the run's real corpus."""
    match config.kind:
        case "markov":
            from mpsynth.providers.markov import MarkovProvider

            return MarkovProvider.from_corpus(config, corpus)
