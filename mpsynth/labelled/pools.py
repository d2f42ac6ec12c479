"""Class pools for a labelled run: per class and strategy (shap_guided, naive), examples from the
real seed, request counts from the class targets."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.core.errors import ConfigError, InputError
from mpsynth.labelled.classifier import JOIN
from mpsynth.labelled.labels import class_counts_text
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.pools import largest_remainder

log = logging.getLogger(__name__)


def run_class_pools(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.labelled.pools import build_class_pools

    labelled = ctx.config.labelled
    labels, platforms = seed_platforms(ctx)
    seed_counts = {
        v["values"]: v["counts"] for v in labels.column("label").value_counts().to_pylist()
    }
    if labelled.is_multi_label:  # combinations too rare to show examples of get no prompts
        rare = {k: n for k, n in seed_counts.items() if n < labelled.min_combination}
        seed_counts = {k: n for k, n in seed_counts.items() if k not in rare}
        if rare:
            log.info(
                "pools: %d class combinations with fewer than %d seed posts get no prompts (%d "
                "posts)",
                len(rare),
                labelled.min_combination,
                sum(rare.values()),
            )
    targets = class_targets(seed_counts, labelled.targets, ctx.config.generate.n_posts)
    log.info("pools: posts to generate per strategy  %s", class_counts_text(targets))
    (out / "targets.json").write_text(json.dumps(targets, indent=2) + "\n")
    pools = build_class_pools(
        labels,
        platforms,
        pq.read_table(ctx.path("cues", "cues.parquet")),
        labelled.strategies,
        targets,
        ctx.config.pools.examples_per_prompt,
        ctx.config.prompts.posts_per_platform,
        labelled.cues.prompt_cues,
        ctx.config.seed,
    )
    return {"pools": write_table(pools, out / "pools.parquet")}


def class_targets(
    seed_counts: dict[str, int],
    targets: str | dict[str, int],
    n_posts: int,
) -> dict[str, int]:
    """Synthetic posts to generate per class and strategy."""
    classes = sorted(seed_counts)
    if isinstance(targets, dict):
        unknown = sorted(set(targets) - set(classes))
        if unknown:
            raise ConfigError(f"labelled.targets: no class {unknown} (classes: {classes})")
        return {c: int(targets.get(c, 0)) for c in classes}
    sizes = np.array([seed_counts[c] for c in classes], dtype=float)
    match targets:
        case "proportional":
            counts = largest_remainder(sizes, n_posts)
        case "equal":
            counts = largest_remainder(np.ones(len(classes)), n_posts)
        case _:  # balance: every class up to the majority first, the rest spread evenly
            deficit = sizes.max() - sizes
            if n_posts <= deficit.sum():
                counts = largest_remainder(deficit, n_posts)
            else:
                counts = deficit.astype(np.int64) + largest_remainder(
                    np.ones(len(classes)), n_posts - int(deficit.sum())
                )
    return dict(zip(classes, (int(c) for c in counts), strict=True))


def seed_platforms(ctx: StageContext) -> tuple[pa.Table, dict[str, str]]:
    """The seed posts' labels, and each seed post's platform."""
    labels = pq.read_table(ctx.path("labels", "labels.parquet"), filters=[("split", "=", "seed")])
    posts = pq.read_table(
        ctx.path("ingest", "posts.parquet"),
        columns=["id", "platform"],
        filters=[("id", "in", labels.column("id").to_pylist())],
    )
    return labels, dict(
        zip(posts.column("id").to_pylist(), posts.column("platform").to_pylist(), strict=True)
    )


def build_class_pools(
    labels: pa.Table,
    platforms: dict[str, str],
    cues: pa.Table,
    strategies: list[str],
    targets: dict[str, int],
    examples_per_prompt: int,
    posts_per_request: int,
    prompt_cues: int,
    seed: int | list[int],
    prefix: str = "",
) -> pa.Table:
    """Pools of a labelled run, one row per request, from the seed posts only.

    Per class, `targets[class]` posts (rounded up to whole requests) for every strategy, spread
    over the platforms in proportion to the class's seed posts. shap_guided pools show examples of
    the class (of the request's platform first) and its top cue words; naive pools show nothing but
    the class name. `prefix` starts every pool id (a deficit round's pools: r1-, r2-, ...).
    """
    seed_rows = [r for r in labels.to_pylist() if r["split"] == "seed"]
    members: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in seed_rows:
        members[row["label"]][platforms[row["id"]]].append(row["id"])
    ranked: dict[str, list[str]] = defaultdict(list)
    for row in sorted(cues.to_pylist(), key=lambda r: (r["label"], r["rank"])):
        ranked[row["label"]].append(row["word"])
    cue_words = {label: combined_cues(label, ranked, prompt_cues) for label in targets}
    rows: dict[str, list] = {name: [] for name in schema.SAMPLE_POOLS.names}
    for index, strategy in enumerate(strategies):
        rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 100 + index])
        number = 0
        for label in sorted(targets):
            by_platform = members.get(label)
            if not by_platform:
                raise InputError(f"class {label!r} has no seed posts to build pools from")
            names = sorted(by_platform)
            requests = -(-targets[label] // posts_per_request)
            per_platform = largest_remainder(
                np.array([len(by_platform[p]) for p in names]), requests
            )
            for platform, count in zip(names, per_platform, strict=True):
                for _ in range(count):
                    examples, shown_cues = [], []
                    if strategy == "shap_guided":
                        examples = _class_examples(by_platform, platform, examples_per_prompt, rng)
                        shown_cues = cue_words.get(label, [])
                    rows["pool_id"].append(f"{prefix}{strategy}-{number:06d}")
                    rows["strategy"].append(strategy)
                    rows["topic"].append(None)
                    rows["target_platforms"].append([platform])
                    rows["example_ids"].append(examples)
                    rows["seed"].append(int(rng.integers(0, 2**31 - 1)))
                    rows["label"].append(label)
                    rows["cues"].append(shown_cues)
                    number += 1
    return pa.Table.from_pydict(rows, schema=schema.SAMPLE_POOLS)


def combined_cues(label: str, ranked: dict[str, list[str]], count: int) -> list[str]:
    """The cue words a prompt for `label` shows: the class's best, or for a combination of classes
    their best in turn (first of each, then second of each, ...), each word once."""
    lists = [ranked.get(c, []) for c in label.split(JOIN)]
    words: list[str] = []
    for rank in range(max((len(w) for w in lists), default=0)):
        for listed in lists:
            if rank < len(listed) and listed[rank] not in words:
                words.append(listed[rank])
    return words[:count]


def _class_examples(
    by_platform: dict[str, list[str]], platform: str, k: int, rng: np.random.Generator
) -> list[str]:
    """k seed posts of the class: the request's platform first, other platforms to fill up."""
    own = by_platform[platform]
    chosen = [own[i] for i in sorted(rng.choice(len(own), min(k, len(own)), replace=False))]
    if len(chosen) < k:
        others = [i for p in sorted(by_platform) if p != platform for i in by_platform[p]]
        extra = rng.choice(len(others), min(k - len(chosen), len(others)), replace=False)
        chosen.extend(others[i] for i in sorted(extra))
    return chosen
