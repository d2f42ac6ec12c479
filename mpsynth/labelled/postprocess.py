"""Postprocess for a labelled run: the topic run's postprocess, then the optional label-consistency
filter (the seed classifier must agree with a post's label), then deficit rounds: per set and
class, what the copy filter and the label filter left short of the class's target is asked for
again (new pools from the seed, the same generator, ledger and budget), up to
`pools.composition.max_rounds` rounds. What is still short is reported per class, never dropped
silently."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.labelled.cues import seed_classifier
from mpsynth.labelled.labels import class_counts_text
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.drops import apply_drops, read_drops
from mpsynth.stages.postprocess.runner import real_index, run_postprocess

log = logging.getLogger(__name__)

MIN_RATE = 0.1  # a class whose posts rarely pass the filters is asked for at most 10x its lack


def run_labelled_postprocess(ctx: StageContext, out: Path) -> dict[str, Any]:
    rows = run_postprocess(ctx, out)
    threshold = ctx.config.labelled.filter_threshold
    model = seed_classifier(ctx) if threshold is not None else None
    summary = json.loads((out / "summary.json").read_text())
    rejected = [pq.read_table(out / "rejected.parquet")]
    sets = {
        path.stem: pq.read_table(path) for path in sorted((out / "synthetic").glob("*.parquet"))
    }
    if model is not None:
        filtered: dict[str, dict[str, int]] = {}
        for name, table in sets.items():
            sets[name], dropped, filtered[name] = label_filter(model, table, threshold)
            rejected.append(dropped)
            log.info(
                "postprocess %s: label filter dropped %d of %d (%s)",
                name,
                dropped.num_rows,
                table.num_rows,
                class_counts_text(filtered[name]) or "none",
            )
        summary["label_filter"] = {"threshold": threshold, "dropped": filtered}
    targets = json.loads(ctx.path("pools", "targets.json").read_text())
    inputs = RoundInputs(ctx)
    summary["deficit"] = {}
    for name in sets:
        sets[name], summary["deficit"][name] = fill_classes(
            ctx, name, sets[name], targets, model, rejected, inputs
        )
    if any(d["rounds"] for d in summary["deficit"].values()):  # what their prompts kept back
        masked = {f"deficit {k}": v for k, v in inputs.guard.summary().items() if v}
        summary["privacy_guard"] = masked
        rows.update(masked)
    if ctx.config.labelled.calibrate and sets:
        sets, summary["calibration"] = calibrate_by_class(
            sets, inputs.seed, ctx.config.seed, out / "calibration"
        )
    drops = read_drops(ctx.run.root)  # the posts a reviewer took out (mpsynth drop)
    for name, table in sets.items():
        table, dropped = apply_drops(drops, table, name, out)
        if dropped:
            summary.setdefault("review", {})[name] = dropped
        rows[name] = write_table(table, out / "synthetic" / f"{name}.parquet")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    rows["rejected"] = write_table(pa.concat_tables(rejected), out / "rejected.parquet")
    return rows


class RoundInputs:
    """What every deficit round reads, read once and only when a round runs: the copy filter's
    index of the real posts, and the seed posts (labels, platforms, texts) with the cue words."""

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    @cached_property
    def index(self) -> Any:
        return real_index(self.ctx)

    @cached_property
    def guard(self) -> Any:
        """One privacy guard for every round (its counts summed, its cue words judged once)."""
        from mpsynth.stages.prompts.guard import Pseudonymiser

        config = self.ctx.config
        return Pseudonymiser(config.seed, config.prompts.phone_region)

    @cached_property
    def seed(self) -> tuple[pa.Table, dict[str, str], pa.Table, pa.Table]:
        """(seed labels, platform of each seed post, their id/platform/text, the cues table)."""
        from mpsynth.labelled.pools import seed_platforms

        labels, platforms = seed_platforms(self.ctx)
        posts = pq.read_table(
            self.ctx.path("ingest", "posts.parquet"),
            columns=["id", "platform", "text"],
            filters=[("id", "in", labels.column("id").to_pylist())],
        )
        return labels, platforms, posts, pq.read_table(self.ctx.path("cues", "cues.parquet"))


def calibrate_by_class(
    sets: dict[str, pa.Table], seed: tuple, run_seed: int, out: Path
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """Every set as it is and calibrated class by class (`<name>-calibrated`): a class's posts get
    the share of posts with hashtags, mentions, URLs and emojis that the seed posts of that class
    have on their platform, values drawn from those posts (a class's lexical shares are part of
    what it is: spam carries links, ham rarely). Only seed posts are read, never the test split.
    The changes of each post in out/<name>.parquet; per set, class, platform and kind: the seed's
    share and the set's before and after."""
    from mpsynth.stages.postprocess.calibrate import calibrate, profile
    from mpsynth.stages.postprocess.runner import CALIBRATED

    labels, _, posts, _ = seed
    label_of = dict(zip(labels["id"].to_pylist(), labels["label"].to_pylist(), strict=True))
    members: dict[str, tuple[list[str], list[str]]] = {}
    for post_id, platform, text in zip(
        posts["id"].to_pylist(),
        posts["platform"].to_pylist(),
        posts["text"].to_pylist(),
        strict=True,
    ):
        texts, platforms = members.setdefault(label_of[post_id], ([], []))
        texts.append(text)
        platforms.append(platform)
    profiles = {label: profile(texts, platforms) for label, (texts, platforms) in members.items()}
    out.mkdir(exist_ok=True)
    result, shares = dict(sets), {}
    for number, (name, table) in enumerate(sorted(sets.items())):
        labels_of = np.array(table["label"].to_pylist(), dtype=object)
        pieces, order, changes, shares[name] = [], [], [], {}
        for label in sorted(set(labels_of.tolist())):
            rows = np.flatnonzero(labels_of == label)
            part = table.take(rows)
            if label in profiles:
                done = calibrate(part, profiles[label], seed=run_seed + number)
                part = done.table
                changes.append(done.changes)
                shares[name][label] = done.shares
            pieces.append(part)
            order.append(rows)
        calibrated = pa.concat_tables(pieces).take(np.argsort(np.concatenate(order)))
        result[name + CALIBRATED] = calibrated
        if changes:
            write_table(pa.concat_tables(changes), out / f"{name}.parquet")
        log.info(
            "postprocess %s: calibrated class by class, %d entities changed",
            name,
            sum(c.num_rows for c in changes),
        )
    return result, shares


def label_filter(model, table: pa.Table, threshold: float) -> tuple[pa.Table, pa.Table, dict]:
    """(the posts whose class the seed classifier gives at least `threshold`, the rejected rows
    with the probability, dropped posts per class)."""
    if not table.num_rows:
        return table, schema.REJECTED_OUTPUTS.empty_table(), {}
    labels = table.column("label").to_pylist()
    wanted = model.label_probability(table.column("text").to_pylist(), labels)
    keep = wanted >= threshold
    dropped = np.flatnonzero(~keep)
    counts = dict(sorted(Counter(labels[i] for i in dropped).items()))
    rejected = pa.table(
        {
            "request_id": table.column("request_id").take(dropped),
            "reason": [
                f"label filter: p({labels[i]}) = {wanted[i]:.2f} < {threshold}" for i in dropped
            ],
            "raw": table.column("text").take(dropped),
        },
        schema=schema.REJECTED_OUTPUTS,
    )
    return table.filter(pa.array(keep)), rejected, counts


def shortfall(table: pa.Table, targets: dict[str, int]) -> dict[str, int]:
    """Posts each class still lacks against its target (classes at or above it left out)."""
    have = Counter(table.column("label").to_pylist())
    return {label: n - have[label] for label, n in sorted(targets.items()) if have[label] < n}


def fill_classes(
    ctx: StageContext,
    name: str,
    table: pa.Table,
    targets: dict[str, int],
    model,
    rejected: list[pa.Table],
    inputs: RoundInputs,
) -> tuple[pa.Table, dict[str, Any]]:
    """Deficit rounds for one set: each round asks for what every short class lacks, divided by
    the share of that class's posts that passed the filters so far, and keeps what passes the copy
    filter (against the real posts and the set's own) and the label filter, up to the class's
    target."""
    max_rounds = ctx.config.pools.composition.max_rounds
    before = shortfall(table, targets)
    lack, rounds, requested = before, 0, 0
    # each class's acceptance so far (the filters' pass rate): a round asks lack / rate
    asked = Counter(targets)
    accepted = Counter(table.column("label").to_pylist())
    filtered: Counter = Counter()
    while lack and rounds < max_rounds:
        rounds += 1
        ask = {
            label: min(math.ceil(n / max(accepted[label] / asked[label], MIN_RATE)), 10 * n)
            for label, n in lack.items()
        }
        log.info(
            "postprocess %s: deficit round %d/%d: short %s; asking %s",
            name,
            rounds,
            max_rounds,
            class_counts_text(lack),
            class_counts_text(ask),
        )
        new, made = _class_round(ctx, name, ask, table, rounds, rejected, inputs)
        requested += made
        if model is not None:
            new, dropped, counts = label_filter(model, new, ctx.config.labelled.filter_threshold)
            rejected.append(dropped)
            filtered.update(counts)
        asked.update(ask)
        accepted.update(new.column("label").to_pylist())
        table = pa.concat_tables([table, _up_to(new, lack)])
        lack = shortfall(table, targets)
    if lack:
        log.warning(
            "postprocess %s: still short after %d deficit round(s): %s",
            name,
            rounds,
            class_counts_text(lack),
        )
    return table, {
        "before": before,
        "rounds": rounds,
        "requests": requested,
        "after": lack,
        "label_filter_dropped": dict(sorted(filtered.items())),
    }


def _up_to(table: pa.Table, lack: dict[str, int]) -> pa.Table:
    """The first posts of each class, as many as it lacks (a round asks in whole requests)."""
    taken: Counter = Counter()
    keep = []
    for label in table.column("label").to_pylist():
        keep.append(taken[label] < lack.get(label, 0))
        taken[label] += keep[-1]
    return table.filter(pa.array(keep, pa.bool_()))


def _class_round(
    ctx: StageContext,
    name: str,
    lack: dict[str, int],
    table: pa.Table,
    round_number: int,
    rejected: list[pa.Table],
    inputs: RoundInputs,
) -> tuple[pa.Table, int]:
    """One round's requests for one set's short classes: (the posts that passed the parser and
    the copy filter, how many requests were made)."""
    from mpsynth.labelled.pools import build_class_pools
    from mpsynth.stages.generate import generate_requests
    from mpsynth.stages.postprocess.parse import postprocess
    from mpsynth.stages.postprocess.runner import drop_copies, generator_number
    from mpsynth.stages.prompts.build import build_requests

    config = ctx.config
    strategy = name.split("-", 1)[1]
    number = generator_number(config, name)
    labels, platforms, posts, cues = inputs.seed
    pools = build_class_pools(
        labels,
        platforms,
        cues,
        [strategy],
        lack,
        config.pools.examples_per_prompt,
        config.prompts.posts_per_platform,
        config.labelled.cues.prompt_cues,
        [config.seed, round_number, number],
        prefix=f"r{round_number}-",
    )
    requests = build_requests(
        pools,
        posts,
        config.prompts,
        [config.generate.generators[number]],
        config.labelled.descriptions,
        inputs.guard,
    )
    answers, _ = generate_requests(ctx, number, requests)
    result = postprocess(requests, pa.Table.from_pylist(answers, schema=schema.COMPLETIONS))
    rejected.append(result.rejected)
    parsed = result.datasets.get(name)
    if parsed is None:
        return table.schema.empty_table(), requests.num_rows
    kept, copies, _ = drop_copies(ctx, inputs.index, {name: parsed}, earlier={name: table})
    rejected.extend(copies)
    return kept[name].select(table.column_names).cast(table.schema), requests.num_rows
