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
    return {
        "posts": write_table(result.posts, out / "posts.parquet"),
        "quarantined": write_table(result.quarantine, out / "quarantine.parquet"),
    }
