"""The pipeline stages; each is a plain function or a callable class over Arrow tables.

A run's stages follow from its config's `pipeline`: the topic-based multi-platform method (mptm)
or the labelled one, which adds labels, cues and utility and builds its pools per class.
"""

from __future__ import annotations

PIPELINES: dict[str, tuple[str, ...]] = {
    "mptm": (
        "ingest",
        "embed",
        "topics",
        "pools",
        "prompts",
        "generate",
        "postprocess",
        "evaluate",
        "report",
    ),
    "labelled": (
        "ingest",
        "labels",
        "embed",
        "topics",
        "cues",
        "pools",
        "prompts",
        "generate",
        "postprocess",
        "utility",
        "evaluate",
        "report",
    ),
}

# every stage name, in pipeline order (one CLI subcommand each)
STAGES: tuple[str, ...] = tuple(
    dict.fromkeys(name for stages in PIPELINES.values() for name in stages)
)
