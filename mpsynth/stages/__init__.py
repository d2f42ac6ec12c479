"""The pipeline stages, in order; each is a plain function or a callable class over Arrow tables."""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "ingest",
    "embed",
    "topics",
    "pools",
    "prompts",
    "generate",
    "postprocess",
    "evaluate",
    "report",
)
