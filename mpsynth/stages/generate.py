"""The generate stage: every request completed through its generator's ledger (live through Ray
actors, or the provider's batch API), and the settled answers written as completions.parquet."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.rundir.directory import RunDirectory

log = logging.getLogger(__name__)


def ledger_dir(run: RunDirectory, generator: str) -> Path:
    """Outside the stage folders on purpose: paid-for answers survive crashes and --force."""
    return run.root / "ledger" / generator


def generate_requests(
    ctx: StageContext, number: int, requests: pa.Table
) -> tuple[list[dict], dict[str, float]]:
    """Complete one generator's requests through its ledger: (the settled ledger row of each
    request that has one, this run's counts). The generator is the config's `number`th."""
    from mpsynth.distributed.generation import run_generator
    from mpsynth.generation.ledger import read_ledger, settled
    from mpsynth.generation.pricing import run_price
    from mpsynth.providers import RealCorpus
    from mpsynth.rundir.storage import LedgerMirror

    generate = ctx.config.generate
    generator = generate.generators[number]
    corpus = RealCorpus(  # what the offline baseline trains on
        posts=ctx.path("ingest", "posts.parquet").resolve(),
        assignments=ctx.path("topics", "assignments").resolve(),
        labels=ctx.path("labels", "labels.parquet").resolve() if ctx.has("labels") else None,
    )
    directory = ledger_dir(ctx.run, generator.name)
    price = run_price(generator, generate.prices)
    mirror = LedgerMirror(ctx.run.remote.uri) if ctx.run.remote else None
    if generator.mode == "batch":
        from mpsynth.generation.batch import run_batches

        counts = run_batches(
            generator,
            requests,
            directory,
            corpus,
            price,
            generate.budget_usd,
            generate.progress_interval_s,
            mirror,
        )
    else:
        counts = run_generator(
            generator,
            requests,
            directory,
            corpus,
            price,
            generate.budget_usd,
            ctx.config.ray,
            generate.flush_every,
            generate.flush_interval_s,
            generate.progress_interval_s,
            seed=ctx.config.seed + 1000 * number,
            mirror=mirror,
        )
    latest = settled(read_ledger(directory))
    wanted = requests.column("request_id").to_pylist()
    return [latest[rid] for rid in wanted if rid in latest], counts


def run_generate(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.generation.ledger import read_ledger

    generate = ctx.config.generate
    requests = pq.read_table(ctx.path("prompts", "requests.parquet"))
    summary, rows, spend = {}, [], 0.0
    for number, generator in enumerate(generate.generators):
        mine = requests.filter(pc.equal(requests.column("generator"), generator.name))
        mine_rows, counts = generate_requests(ctx, number, mine)
        ledger = read_ledger(ledger_dir(ctx.run, generator.name))
        wanted = mine.column("request_id").to_pylist()
        generator_spend = float(pc.sum(ledger.column("cost_usd")).as_py() or 0.0)
        spend += generator_spend
        rows.extend(mine_rows)
        summary[generator.name] = {
            "requests": len(wanted),
            "ok": sum(r["status"] == "ok" for r in mine_rows),
            "failed": sum(r["status"] == "failed" for r in mine_rows),
            "missing": len(wanted) - len(mine_rows),
            "repaired": sum(r["repaired"] for r in mine_rows),
            "this_run": counts,
            "spend_usd": round(generator_spend, 6),
        }
        if summary[generator.name]["missing"]:
            log.warning(
                "generate %s: %d requests have no answer (budget reached?)",
                generator.name,
                summary[generator.name]["missing"],
            )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    completions = pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
    write_table(completions, out / "completions.parquet")
    return {
        "completions": completions.num_rows,
        "failed": sum(s["failed"] for s in summary.values()),
        "missing": sum(s["missing"] for s in summary.values()),
        "spend_usd": round(spend, 6),
    }
