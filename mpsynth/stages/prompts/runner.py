"""The prompts stage's runner: one request row per pool draw and generator, examples masked by the
privacy guard where it applies."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.rundir.context import StageContext, write_table

log = logging.getLogger(__name__)


def run_prompts(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.prompts.build import build_requests
    from mpsynth.stages.prompts.guard import KINDS, Pseudonymiser, guard_applies

    guard = Pseudonymiser(ctx.config.seed, ctx.config.prompts.phone_region)
    posts = pq.read_table(ctx.reference(), columns=["id", "platform", "text"])
    cue_posts = None
    if ctx.has("labels"):  # the cues came from the seed: judge them there, never on the test split
        seed = pq.read_table(
            ctx.path("labels", "labels.parquet"), columns=["id"], filters=[("split", "==", "seed")]
        )
        cue_posts = posts.filter(pc.is_in(posts.column("id"), seed.column("id")))
    requests = build_requests(
        pq.read_table(ctx.path("pools", "pools.parquet")),
        posts,
        ctx.config.prompts,
        ctx.config.generate.generators,
        ctx.config.labelled.descriptions if ctx.has("labels") else None,
        guard,
        cue_posts,
    )
    guarded = [
        g.name
        for g in ctx.config.generate.generators
        if guard_applies(ctx.config.prompts.privacy_guard, g.provider.kind)
    ]
    masked = guard.summary() if guarded else {}
    if guarded:
        log.info(
            "prompts: privacy guard (%s) masked %s",
            ", ".join(guarded),
            ", ".join(f"{guard.masked[kind]:,} {kind}" for kind in KINDS),
        )
    return {"requests": write_table(requests, out / "requests.parquet"), **masked}
