"""The generate stage: every request completed through its generator's ledger (live through Ray
actors, or the provider's batch API), and the settled answers written as completions.parquet."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.core.errors import StageError
from mpsynth.rundir.context import StageContext, write_table

log = logging.getLogger(__name__)


def ledger_dir(ctx: StageContext, generator: str) -> Path:
    """Outside the stage folders on purpose: paid-for answers survive crashes and --force. A
    ledger is keyed by request id (everything that shapes an answer), so runs may share one: a
    sweep's variations do."""
    return (ctx.ledger_root or ctx.run.root) / "ledger" / generator


def completion_cache(ctx: StageContext, generator: Any):
    """The completion cache a generator's answers are looked up in and filed to (None when
    generate.cache is off, or for the Markov stand-in)."""
    from mpsynth.generation.cache import UNCACHED_PROVIDERS, CompletionCache
    from mpsynth.stages.embed import cache_folder

    settings = ctx.config.generate
    if not settings.cache or generator.provider.kind in UNCACHED_PROVIDERS:
        return None
    return CompletionCache(cache_folder(ctx), int(settings.cache_max_gb * 1024**3))


def fill_from_cache(ctx: StageContext, number: int, requests: pa.Table) -> int:
    """Enter into the generator's ledger every request of `requests` the ledger lacks and the
    completion cache holds (attempts 0, cost 0); how many."""
    from mpsynth.generation.ledger import LedgerWriter, read_ledger, succeeded_ids
    from mpsynth.rundir.storage import LedgerMirror

    generator = ctx.config.generate.generators[number]
    cache = completion_cache(ctx, generator)
    if cache is None or not requests.num_rows:
        return 0
    directory = ledger_dir(ctx, generator.name)
    done = succeeded_ids(read_ledger(directory))
    found = cache.lookup(r for r in requests.column("request_id").to_pylist() if r not in done)
    if not found:
        return 0
    mirror = LedgerMirror(ctx.run.remote.uri) if ctx.run.remote else None
    writer = LedgerWriter(directory, flush_every=len(found) + 1, mirror=mirror)
    now = time.time()
    for row in found.values():
        writer.add(
            row
            | {"generator": generator.name, "attempts": 0, "cost_usd": 0.0, "latency_s": 0.0}
            | {"finished_at": now}
        )
    writer.flush()
    log.info(
        "generate %s: %d answers from the completion cache (nothing sent, nothing paid)",
        generator.name,
        len(found),
    )
    return len(found)


def file_answers(
    ctx: StageContext, generator: Any, requests: pa.Table, ledger: pa.Table, since: float
) -> int:
    """File in the completion cache the answers of the generator's `ledger` this run received for
    `requests` since `since`."""
    cache = completion_cache(ctx, generator)
    if cache is None:
        return 0
    mine = set(requests.column("request_id").to_pylist())
    fresh = [
        r
        for r in ledger.to_pylist()
        if r["attempts"] > 0 and r["finished_at"] >= since and r["request_id"] in mine
    ]
    return cache.add(fresh)


def generate_requests(
    ctx: StageContext, number: int, requests: pa.Table, from_cache: bool = True
) -> tuple[list[dict], dict[str, float]]:
    """Complete one generator's requests through its ledger: (the settled ledger row of each
    request that has one, this run's counts). The generator is the config's `number`th; requests
    the completion cache holds are taken from it first (unless the caller did: `from_cache`)."""
    from mpsynth.distributed.generation import run_generator
    from mpsynth.generation.ledger import read_ledger, settled
    from mpsynth.generation.pricing import run_price
    from mpsynth.providers import RealCorpus
    from mpsynth.rundir.storage import LedgerMirror

    generate = ctx.config.generate
    generator = generate.generators[number]
    corpus = RealCorpus(  # what the offline baseline trains on
        posts=ctx.reference().resolve(),  # never the held-out posts
        assignments=ctx.path("topics", "assignments").resolve(),
        labels=ctx.path("labels", "labels.parquet").resolve() if ctx.has("labels") else None,
    )
    directory = ledger_dir(ctx, generator.name)
    started = time.time()
    cached = fill_from_cache(ctx, number, requests) if from_cache else 0
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
            seed=ctx.config.draw_seed + 1000 * number,
            mirror=mirror,
        )
    if cached:
        counts = {**counts, "cached": cached}
    ledger = read_ledger(directory)
    file_answers(ctx, generator, requests, ledger, started)
    latest = settled(ledger)
    wanted = requests.column("request_id").to_pylist()
    return [latest[rid] for rid in wanted if rid in latest], counts


def check_budget(ctx: StageContext, requests: pa.Table) -> None:
    """Stop before any request when the prompts still to send already cost more than
    `generate.budget_usd` (each generator's budget), whatever the answers will cost."""
    from mpsynth.generation.ledger import read_ledger, succeeded_ids
    from mpsynth.generation.pricing import estimate_generation

    generate = ctx.config.generate
    if generate.budget_usd is None:
        return
    done = {
        g.name: succeeded_ids(read_ledger(ledger_dir(ctx, g.name))) for g in generate.generators
    }
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "text"])
    for row in estimate_generation(requests, posts, generate.generators, generate.prices, done):
        if row["min_usd"] is not None and row["min_usd"] > generate.budget_usd:
            raise StageError(
                f"generate {row['generator']}: the {row['to_run']:,} requests to run cost at least "
                f"${row['min_usd']:.4f} in prompt tokens alone ({row['prompt_tokens']:,} tokens "
                f"of {row['model']}; ${row['expected_usd']:.4f} expected with the answers), over "
                f"generate.budget_usd=${generate.budget_usd:g}: raise the budget or lower "
                "generate.n_posts (mpsynth estimate shows the figures)"
            )


def run_generate(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.generation.ledger import read_ledger

    generate = ctx.config.generate
    requests = pq.read_table(ctx.path("prompts", "requests.parquet"))
    mine_of = {
        g.name: requests.filter(pc.equal(requests.column("generator"), g.name))
        for g in generate.generators
    }
    # answers any run has had before first: the budget counts only what is still to be asked
    cached = {
        g.name: fill_from_cache(ctx, number, mine_of[g.name])
        for number, g in enumerate(generate.generators)
    }
    check_budget(ctx, requests)
    summary, rows, spend = {}, [], 0.0
    for number, generator in enumerate(generate.generators):
        mine = mine_of[generator.name]
        mine_rows, counts = generate_requests(ctx, number, mine, from_cache=False)
        if cached[generator.name]:
            counts = {**counts, "cached": cached[generator.name]}
        ledger = read_ledger(ledger_dir(ctx, generator.name))
        wanted = mine.column("request_id").to_pylist()
        # what this run's requests cost (a ledger shared by a sweep's variations holds others')
        ours = ledger.filter(pc.is_in(ledger.column("request_id"), pa.array(wanted, pa.string())))
        generator_spend = float(pc.sum(ours.column("cost_usd")).as_py() or 0.0)
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
    over_budget = {
        name: s["missing"]
        for name, s in summary.items()
        if s["missing"] and s["this_run"].get("budget_skipped")
    }
    if over_budget:  # the stage is not committed: a run with a larger budget resumes it
        raise StageError(
            f"generate: generate.budget_usd=${generate.budget_usd:g} reached with requests "
            "left unanswered ("
            + ", ".join(f"{name}: {n:,}" for name, n in over_budget.items())
            + f"; ${spend:.4f} spent in all). The answers so far are kept in the ledger: raise "
            "the budget and run again to finish"
        )
    _finish_what_failed(summary, generate.accept_gaps)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    completions = pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
    write_table(completions, out / "completions.parquet")
    return {
        "completions": completions.num_rows,
        "failed": sum(s["failed"] for s in summary.values()),
        "missing": sum(s["missing"] for s in summary.values()),
        "spend_usd": round(spend, 6),
    }


def _finish_what_failed(summary: dict[str, dict[str, Any]], accept_gaps: bool) -> None:
    """Requests that failed or got no answer leave the stage uncommitted (an error), so the next
    run asks again for exactly those, the answered ones kept in the ledger; with
    `generate.accept_gaps` the stage goes on without them, and its summary says so."""
    gaps = {
        n: (s["failed"], s["missing"]) for n, s in summary.items() if s["failed"] or s["missing"]
    }
    if not gaps:
        return
    told = ", ".join(
        f"{name}: {failed:,} failed, {missing:,} without an answer"
        for name, (failed, missing) in gaps.items()
    )
    if accept_gaps:
        for name in summary:
            summary[name]["gaps_accepted"] = name in gaps
        log.warning("generate: going on without %s (generate.accept_gaps)", told)
        return
    answered = sum(s["ok"] for s in summary.values())
    raise StageError(
        f"generate: {told}. The {answered:,} answered are kept in the ledger: run the same "
        "command again to ask for the others only (no --force needed), or set "
        "generate.accept_gaps: true to go on without them"
    )
