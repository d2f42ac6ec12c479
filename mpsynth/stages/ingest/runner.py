"""The ingest stage's runner: every input into posts.parquet, bad rows into quarantine.parquet, the
counts per platform into summary.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from mpsynth.rundir.context import StageContext, write_table

log = logging.getLogger(__name__)


def run_ingest(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.ingest.normalise import ingest

    result = ingest(ctx.config.ingest)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    (out / "timestamps.json").write_text(json.dumps(result.timestamps, indent=2) + "\n")
    for platform, counts in result.summary.items():
        log.info(
            "ingest %-10s read %7d  kept %7d  quarantined %6d%s",
            platform,
            counts["read"],
            counts["kept"],
            counts["quarantined"],
            f"  control characters stripped from {n}"
            if (n := counts["control_chars_stripped"])
            else "",
        )
        if structure := structure_line(counts):
            log.info("ingest %-10s %s", platform, structure)
    return {
        "posts": write_table(result.posts, out / "posts.parquet"),
        "quarantined": write_table(result.quarantine, out / "quarantine.parquet"),
    }


def structure_line(counts: dict[str, int]) -> str:
    """What platform structure a platform's posts carry, in words ('' when none)."""
    kept = counts["kept"] or 1
    parts = []
    if counts.get("with_author"):
        parts.append(
            f"{counts['accounts']:,} accounts ({counts['with_author'] / kept:.0%} of posts)"
        )
    if counts.get("with_timestamp"):
        parts.append(f"timestamps on {counts['with_timestamp'] / kept:.0%}")
    for name in ("reply_to", "thread_id", "quote_of"):
        if counts.get(f"with_{name}"):
            parts.append(f"{name} on {counts[f'with_{name}'] / kept:.0%}")
    return ", ".join(parts)
