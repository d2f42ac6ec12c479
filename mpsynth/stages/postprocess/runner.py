"""The postprocess stage: parse every completion into posts, drop copies, then bring each synthetic
set to its composition targets: deficit rounds request only what the short cells lack (through the
same prompts, privacy guard, generation engine and ledger as the first round), and the surplus
beyond a cell's target is trimmed. Everything dropped goes to rejected.parquet with its reason."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core import console, schema
from mpsynth.metrics.privacy import RealCorpusIndex
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.postprocess.copies import CopyFilter

log = logging.getLogger(__name__)


def run_postprocess(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.postprocess.parse import postprocess

    result = postprocess(
        pq.read_table(ctx.path("prompts", "requests.parquet")),
        pq.read_table(ctx.path("generate", "completions.parquet")),
    )
    index = real_index(ctx)
    filters: dict[str, CopyFilter] = {}  # each set's, holding the posts kept: deficit rounds add
    datasets, rejected, copies = drop_copies(ctx, index, result.datasets, filters=filters)
    summary: dict[str, Any] = {**result.counts, "copies": copies}
    targets_path = ctx.run.stage_dir("pools") / "targets.parquet"  # labelled pools have none
    if targets_path.is_file() and pq.read_metadata(targets_path).num_rows:
        datasets, summary["composition"] = fill_cells(
            ctx, index, pq.read_table(targets_path), datasets, rejected, copies, filters
        )
    # labelled runs judge sets by a classifier's F1: calibrated copies would double the grid
    if ctx.config.postprocess.calibrate and datasets and not ctx.has("labels"):
        datasets, summary["calibration"] = calibrate_sets(ctx, datasets, out / "calibration")
    (out / "synthetic").mkdir()
    rows = {
        name: write_table(t, out / "synthetic" / f"{name}.parquet") for name, t in datasets.items()
    }
    rows["rejected"] = write_table(
        pa.concat_tables([result.rejected, *rejected]), out / "rejected.parquet"
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return rows


CALIBRATED = "-calibrated"


def calibrate_sets(
    ctx: StageContext, datasets: dict[str, pa.Table], out: Path
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """Every set as it is and calibrated (`<name>-calibrated`); the changes of each post in
    out/<name>.parquet; per set, platform and kind: the real share and the share before and
    after."""
    from mpsynth.stages.postprocess.calibrate import calibrate, profile
    from mpsynth.stages.topics import topic_of as topics_by_id

    posts = pq.read_table(ctx.reference(), columns=["id", "platform", "text"])
    topic_of = topics_by_id(ctx.path("topics", "assignments"))
    log.info("postprocess: profiling the entities of %d real posts for calibration", posts.num_rows)
    profiles = profile(
        posts.column("text").to_pylist(),
        posts.column("platform").to_pylist(),
        [topic_of.get(i) for i in posts.column("id").to_pylist()],
    )
    out.mkdir()
    result, shares = dict(datasets), {}
    for number, (name, table) in enumerate(sorted(datasets.items())):
        calibrated = calibrate(table, profiles, seed=ctx.config.draw_seed + number)
        result[name + CALIBRATED] = calibrated.table
        write_table(calibrated.changes, out / f"{name}.parquet")
        shares[name] = calibrated.shares
        log.info(
            "postprocess %s: calibration changed %d posts (%d entities added, %d removed)",
            name,
            len(set(calibrated.changes.column("id").to_pylist())),
            calibrated.changes.column("action").to_pylist().count("added"),
            calibrated.changes.column("action").to_pylist().count("removed"),
        )
    return result, shares


def real_index(ctx: StageContext) -> RealCorpusIndex | None:
    """Every real post indexed for the copy filter (None when every check is off): the held-out
    ones too, since a copy of any real post is a copy."""
    if not any(ctx.config.postprocess.copies.model_dump().values()):
        return None
    real = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "text", "author"])
    with console.progress("postprocess: indexing real posts", real.num_rows, "posts") as shown:
        return RealCorpusIndex(
            real.column("id").to_pylist(),
            real.column("text").to_pylist(),
            real.column("author").to_pylist(),
            progress=lambda done: shown.update(done=done),
        )


def drop_copies(
    ctx: StageContext,
    index: RealCorpusIndex | None,
    datasets: dict[str, pa.Table],
    earlier: dict[str, pa.Table] | None = None,
    filters: dict[str, CopyFilter] | None = None,
) -> tuple[dict[str, pa.Table], list[pa.Table], dict[str, dict[str, int]]]:
    """The copy filter (postprocess.copies) over every synthetic set: (kept sets, rejected rows,
    counts per set). `earlier`: posts of the same sets kept before (a deficit round's new posts
    must not repeat them); `filters`: each set's filter, kept by the caller across rounds (it
    holds the posts it kept, so `earlier` is not indexed again)."""
    from mpsynth.stages.postprocess.copies import REASONS, tally

    if index is None or not datasets:
        return datasets, [], {}
    filters = {} if filters is None else filters
    kept, rejected, counts = {}, [], {}
    for name, table in datasets.items():
        if name not in filters:
            filters[name] = CopyFilter(index, ctx.config.postprocess.copies)
            if earlier and name in earlier:
                filters[name].keep(earlier[name].column("text").to_pylist())
        with console.progress(f"postprocess {name}: copy filter", table.num_rows, "posts") as shown:
            reasons = filters[name].reasons(
                table.column("text").to_pylist(),
                table.column("example_ids").to_pylist(),
                progress=lambda done: shown.update(done=done),
            )
        counts[name] = tally(reasons)
        dropped = [i for i, r in enumerate(reasons) if r is not None]
        kept[name] = table.filter(pa.array([r is None for r in reasons]))
        rejected.append(
            _rejected(table, dropped, [REASONS[reasons[i]] for i in dropped])  # type: ignore[index]
        )
        log.info(
            "postprocess %s: copy filter dropped %s of %d",
            name,
            ", ".join(f"{counts[name][r]} {r.replace('_', ' ')}" for r in REASONS),
            len(reasons),
        )
    return kept, rejected, counts


def _rejected(table: pa.Table, rows: list[int], reasons: list[str]) -> pa.Table:
    taken = pa.array(rows, pa.int64())
    return pa.table(
        {
            "request_id": table.column("request_id").take(taken),
            "reason": pa.array(reasons, pa.string()),
            "raw": table.column("text").take(taken),
        },
        schema=schema.REJECTED_OUTPUTS,
    )


def fill_cells(
    ctx: StageContext,
    index: RealCorpusIndex | None,
    targets: pa.Table,
    datasets: dict[str, pa.Table],
    rejected: list[pa.Table],
    copies: dict[str, dict[str, int]],
    filters: dict[str, CopyFilter] | None = None,
) -> tuple[dict[str, pa.Table], dict[str, dict[str, Any]]]:
    """Deficit rounds until every cell meets its target or pools.composition.max_rounds is spent,
    then the surplus trimmed. Returns the sets and, per set, what happened. `filters`: each set's
    copy filter from the first round, holding the posts it kept."""
    from mpsynth.stages.postprocess.composition import (
        cell_js_divergence,
        cells_of,
        shortfall,
        within_targets,
    )

    wanted: dict[str, dict] = {}
    real_posts: dict[str, dict] = {}
    for row in targets.to_pylist():
        cell = (row["topic"], row["platform"])
        wanted.setdefault(row["strategy"], {})[cell] = row["target"]
        real_posts.setdefault(row["strategy"], {})[cell] = row["real"]
    strategy_of = {name: name.split("-", 1)[1] for name in datasets}
    report: dict[str, dict[str, Any]] = {}
    for name, table in datasets.items():
        strategy = strategy_of[name]
        counts = Counter(cells_of(table, strategy))
        report[name] = {
            "target": sum(wanted[strategy].values()),
            "accepted_first_round": table.num_rows,
            "js_first_round": _rounded(cell_js_divergence(real_posts[strategy], counts)),
            "rounds": 0,
            "requests_added": 0,
        }
    max_rounds = ctx.config.pools.composition.max_rounds
    real = None  # the real posts and their cells, read when a round first needs them
    for round_number in range(1, max_rounds + 1):
        short = {
            name: lack
            for name, table in datasets.items()
            if (
                lack := shortfall(
                    wanted[strategy_of[name]], Counter(cells_of(table, strategy_of[name]))
                )
            )
        }
        if not short:
            break
        log.info(
            "postprocess: deficit round %d/%d: %s",
            round_number,
            max_rounds,
            ", ".join(f"{name} lacks {sum(lack.values()):,}" for name, lack in short.items()),
        )
        real = real or _real_cells(ctx)
        for name, lack in short.items():
            new, requests = _deficit_round(ctx, real, name, strategy_of[name], lack, round_number)
            new, dropped, counted = drop_copies(ctx, index, new, datasets, filters)
            rejected.extend(dropped)
            for counts in counted.values():
                merged = copies.setdefault(name, Counter())
                for key, value in counts.items():
                    merged[key] = merged.get(key, 0) + value
            if name in new:
                datasets[name] = pa.concat_tables([datasets[name], new[name]])
            report[name]["rounds"] = round_number
            report[name]["requests_added"] += requests
    for name, table in datasets.items():
        strategy = strategy_of[name]
        cells = cells_of(table, strategy)
        keep = within_targets(cells, wanted[strategy])
        surplus = np.flatnonzero(~keep).tolist()
        rejected.append(
            _rejected(table, surplus, ["composition: beyond the cell's target"] * len(surplus))
        )
        datasets[name] = table.filter(pa.array(keep))
        counts = Counter(cells_of(datasets[name], strategy))
        lack = shortfall(wanted[strategy], counts)
        report[name] |= {
            "accepted": datasets[name].num_rows,
            "surplus_trimmed": len(surplus),
            "shortfall": sum(lack.values()),
            "short_cells": [
                {"topic": t, "platform": p, "lacks": n}
                for (t, p), n in sorted(lack.items(), key=lambda item: -item[1])[:20]
            ],
            "js": _rounded(cell_js_divergence(real_posts[strategy], counts)),
        }
        log.info(
            "postprocess %s: %d of %d target posts after %d deficit round(s); JS divergence from "
            "the real cells %.4f (first round %.4f)",
            name,
            report[name]["accepted"],
            report[name]["target"],
            report[name]["rounds"],
            report[name]["js"],
            report[name]["js_first_round"],
        )
    return datasets, report


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def _real_cells(ctx: StageContext) -> tuple[pa.Table, Any]:
    """(the real posts' id, platform and text; their RealCells)."""
    from mpsynth.stages.pools import RealCells

    posts = pq.read_table(ctx.reference(), columns=["id", "platform", "text"])
    assignments = pq.read_table(ctx.path("topics", "assignments"))
    return posts, RealCells.build(posts, assignments, ctx.config.pools.include_outliers)


def generator_number(config, name: str) -> int:
    """The position in generate.generators of the generator that wrote set `name`."""
    generator = name.split("-", 1)[0]
    return next(i for i, g in enumerate(config.generate.generators) if g.name == generator)


def _deficit_round(
    ctx: StageContext,
    real: tuple[pa.Table, Any],
    name: str,
    strategy: str,
    lack: dict,
    round_number: int,
) -> tuple[dict[str, pa.Table], int]:
    """Request what one set's short cells lack; the parsed posts of the answers, and how many
    requests were made."""
    from mpsynth.stages.enrichment import load_enrichment
    from mpsynth.stages.generate import generate_requests
    from mpsynth.stages.pools import draws_for_cells, pools_table
    from mpsynth.stages.postprocess.parse import postprocess
    from mpsynth.stages.prompts.build import build_requests
    from mpsynth.stages.prompts.guard import Pseudonymiser

    config = ctx.config
    number = generator_number(config, name)
    posts, cells = real
    rng = np.random.default_rng(
        [config.draw_seed, round_number, number, config.strategies().index(strategy)]
    )
    draws = draws_for_cells(
        cells,
        strategy,
        lack,
        config.pools.examples_per_prompt,
        config.prompts.posts_per_platform,
        rng,
        load_enrichment(ctx),
    )
    pools = pools_table({strategy: draws}, {strategy: rng}, prefix=f"r{round_number}-")
    guard = Pseudonymiser(config.seed, config.prompts.phone_region)
    requests = build_requests(
        pools, posts, config.prompts, [config.generate.generators[number]], guard=guard
    )
    rows, _ = generate_requests(ctx, number, requests)
    completions = pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
    return postprocess(requests, completions).datasets, requests.num_rows
