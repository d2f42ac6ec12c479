"""Utility: does a synthetic set help a classifier on real data?

The grid: for each number of added posts and each repeat, the run's classifier (the kind the cues
stage chose) trains on
- real:      the real seed plus that many more real posts (from the reserve),
- +SET:      the real seed plus that many posts of a synthetic set,
- SET alone: that many posts of a synthetic set and nothing else,
and once on the seed alone (the baseline), and is tested on the real test split. Added posts follow
the synthetic set's class mix (real additions follow the generation targets' mix, as far as the
reserve holds them). Each cell is a pure function of its plan and the shared data, so the grid runs
anywhere (Ray tasks in mpsynth.distributed.tasks). Scores: macro-F1 and per-class F1; intervals by
bootstrap over test posts (the same resamples for every cell), spread over repeats.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.labelled.classifier import TextClassifier, macro_f1, per_class_f1
from mpsynth.labelled.labels import labelled_texts
from mpsynth.metrics.linguistic import linguistic_metrics
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.pools import largest_remainder

SEED_ONLY, REAL = "seed only", "real"
TFIDF, EMBEDDINGS = "tfidf", "embeddings"  # the judges

CELLS_SCHEMA = pa.schema(
    [
        pa.field("judge", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("added", pa.int64(), nullable=False),
        pa.field("repeat", pa.int64(), nullable=False),
        pa.field("train_posts", pa.int64(), nullable=False),
        pa.field("macro_f1", pa.float64(), nullable=False),
        pa.field("f1", pa.list_(pa.float64()), nullable=False),
        pa.field("predictions", pa.list_(pa.int16()), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
    ]
)
SUMMARY_SCHEMA = pa.schema(
    [
        pa.field("judge", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("added", pa.int64(), nullable=False),
        pa.field("class", pa.string()),  # null: macro-F1
        pa.field("f1", pa.float64(), nullable=False),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("repeat_sd", pa.float64()),
        pa.field("repeat_min", pa.float64()),
        pa.field("repeat_max", pa.float64()),
        pa.field("repeats", pa.int64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Labelled:
    """Texts and class indices of one part of the data, and their sentence embeddings (row-aligned;
    None when no embedding judge runs)."""

    texts: list[str]
    labels: np.ndarray  # class indices
    vectors: np.ndarray | None = None


@dataclass(frozen=True)
class GridData:
    classes: list[str]
    kind: str  # classifier kind
    seed: Labelled
    reserve: Labelled
    test: Labelled
    synthetic: dict[str, Labelled]
    real_mix: dict[int, int]  # class index -> weight of real additions
    max_features: int
    min_df: int


@dataclass(frozen=True)
class Cell:
    strategy: str  # SEED_ONLY, REAL, "+SET" or "SET alone"
    added: int
    repeat: int
    seed: int
    judge: str = TFIDF


def plan_cells(
    data: GridData, added: list[int], repeats: int, seed: int, judges: tuple[str, ...] = (TFIDF,)
) -> tuple[list[Cell], list[str]]:
    """Every cell the data allows, once per judge (the same draws, so the judges are compared on
    the same training sets), and a note for each cell it does not allow."""
    cells, skipped = [Cell(SEED_ONLY, 0, 0, seed, judge) for judge in judges], []
    strategies = [REAL] + [f"+{n}" for n in data.synthetic] + [f"{n} alone" for n in data.synthetic]
    for strategy in strategies:
        available = len(_source(data, strategy).texts)
        for count in sorted(set(added)):
            if count > available:
                skipped.append(f"{strategy} at {count}: only {available} posts to add")
                continue
            for repeat in range(repeats):
                cell_seed = zlib.crc32(f"{seed}|{strategy}|{count}|{repeat}".encode())
                cells += [Cell(strategy, count, repeat, cell_seed, judge) for judge in judges]
    return cells, skipped


def _source(data: GridData, strategy: str) -> Labelled:
    if strategy == REAL:
        return data.reserve
    name = strategy[1:] if strategy.startswith("+") else strategy.removesuffix(" alone")
    return data.synthetic[name]


def draw(source: Labelled, count: int, mix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`count` positions of `source` whose classes follow `mix` as far as each class holds posts;
    a class's shortfall is filled at random from what is left."""
    quotas = largest_remainder(mix, count)
    chosen = []
    for c, quota in enumerate(quotas):
        members = np.flatnonzero(source.labels == c)
        chosen.append(rng.choice(members, min(quota, len(members)), replace=False))
    picked = np.concatenate(chosen) if chosen else np.array([], dtype=np.int64)
    short = count - len(picked)
    if short > 0:
        rest = np.setdiff1d(np.arange(len(source.texts)), picked)
        picked = np.concatenate([picked, rng.choice(rest, short, replace=False)])
    return np.sort(picked.astype(np.int64))


def training_rows(data: GridData, cell: Cell) -> list[tuple[Labelled, np.ndarray]]:
    """The cell's training set as (part, positions in it) pairs."""
    if cell.strategy == SEED_ONLY:
        return [(data.seed, np.arange(len(data.seed.texts)))]
    source = _source(data, cell.strategy)
    n = len(data.classes)
    if cell.strategy == REAL:
        mix = np.array([data.real_mix.get(c, 0) for c in range(n)], dtype=float)
    else:
        mix = np.bincount(source.labels, minlength=n).astype(float)
    rng = np.random.default_rng(cell.seed)
    picked = draw(source, cell.added, mix, rng)
    if cell.strategy.endswith(" alone"):
        return [(source, picked)]
    return [(data.seed, np.arange(len(data.seed.texts))), (source, picked)]


def training_set(data: GridData, cell: Cell) -> tuple[list[str], np.ndarray]:
    parts = training_rows(data, cell)
    texts = [part.texts[i] for part, rows in parts for i in rows.tolist()]
    return texts, np.concatenate([part.labels[rows] for part, rows in parts])


def embedding_judge():
    """The judge of another family: logistic regression on sentence embeddings (classes absent
    from a training set are never predicted)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, random_state=0)


def run_cell(cell: Cell, data: GridData) -> dict:
    """Train the cell's judge on its training set, predict the real test split."""
    started = time.perf_counter()
    n = len(data.classes)
    if cell.judge == EMBEDDINGS:
        parts = training_rows(data, cell)
        vectors = np.vstack([part.vectors[rows] for part, rows in parts])
        labels = np.concatenate([part.labels[rows] for part, rows in parts])
        if len(np.unique(labels)) == 1:  # a set holding one class: it can only say that class
            predicted = np.full(len(data.test.labels), labels[0], dtype=np.int64)
        else:
            predicted = embedding_judge().fit(vectors, labels).predict(data.test.vectors)
        train_posts = len(labels)
    else:
        texts, labels = training_set(data, cell)
        model = TextClassifier(data.kind, data.classes, 0, data.max_features, data.min_df)
        model.fit(texts, [data.classes[i] for i in labels])
        predicted = model.predict(data.test.texts)
        train_posts = len(texts)
    return {
        "judge": cell.judge,
        "strategy": cell.strategy,
        "added": cell.added,
        "repeat": cell.repeat,
        "train_posts": train_posts,
        "macro_f1": macro_f1(data.test.labels, predicted, n),
        "f1": per_class_f1(data.test.labels, predicted, n).tolist(),
        "predictions": predicted.astype(np.int16).tolist(),
        "seconds": time.perf_counter() - started,
    }


def f1_from_codes(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class F1 for each row of `codes` (truth * n_classes + predicted), vectorised."""
    rows = codes.shape[0]
    offsets = (np.arange(rows) * n_classes * n_classes)[:, None]
    confusion = np.bincount(
        (codes + offsets).ravel(), minlength=rows * n_classes * n_classes
    ).reshape(rows, n_classes, n_classes)
    tp = np.einsum("rii->ri", confusion).astype(float)
    fp = confusion.sum(axis=1) - tp
    fn = confusion.sum(axis=2) - tp
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def summarise(
    cells: pa.Table,
    truth: np.ndarray,
    classes: list[str],
    bootstrap_samples: int,
    confidence: float,
    seed: int,
) -> pa.Table:
    """Mean F1 over repeats per judge, strategy and added count, macro and per class, with a bootstrap
    interval over test posts (one set of resamples shared by every cell) and the repeats' spread."""
    n = len(classes)
    rng = np.random.default_rng(seed)
    resamples = (
        rng.integers(0, len(truth), size=(bootstrap_samples, len(truth)))
        if bootstrap_samples
        else None
    )
    rows: dict[str, list] = {name: [] for name in SUMMARY_SCHEMA.names}
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for row in cells.to_pylist():
        groups.setdefault((row["judge"], row["strategy"], row["added"]), []).append(row)
    alpha = (1 - confidence) / 2
    for (judge, strategy, added), members in groups.items():
        f1 = np.array([m["f1"] for m in members])  # repeats x classes
        scores = np.column_stack([f1.mean(axis=1), f1])  # macro first
        boot = None
        if resamples is not None:
            per_repeat = []
            for m in members:
                predicted = np.asarray(m["predictions"], dtype=np.int64)
                per_repeat.append(f1_from_codes(truth[resamples] * n + predicted[resamples], n))
            per_class = np.mean(per_repeat, axis=0)  # resamples x classes, mean over repeats
            boot = np.column_stack([per_class.mean(axis=1), per_class])
        for column, name in enumerate([None, *classes]):
            values = scores[:, column]
            rows["judge"].append(judge)
            rows["strategy"].append(strategy)
            rows["added"].append(added)
            rows["class"].append(name)
            rows["f1"].append(float(values.mean()))
            low, high = (
                np.quantile(boot[:, column], [alpha, 1 - alpha])
                if boot is not None
                else (None,) * 2
            )
            rows["ci_low"].append(None if low is None else float(low))
            rows["ci_high"].append(None if high is None else float(high))
            rows["repeat_sd"].append(float(values.std(ddof=1)) if len(values) > 1 else None)
            rows["repeat_min"].append(float(values.min()))
            rows["repeat_max"].append(float(values.max()))
            rows["repeats"].append(len(values))
    return pa.Table.from_pydict(rows, schema=SUMMARY_SCHEMA)


LINGUISTIC_SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("class", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("n", pa.int64(), nullable=False),
    ]
)


def linguistic_by_class(
    sets: dict[str, Labelled], classes: list[str], per_class: int, seed: int
) -> pa.Table:
    """The evaluation suite's linguistic measures per dataset and class, each on the same number
    of posts (the smallest set's, up to `per_class`), since vocabulary grows with text."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {name: [] for name in LINGUISTIC_SCHEMA.names}
    for c, label in enumerate(classes):
        members = {name: np.flatnonzero(s.labels == c) for name, s in sets.items()}
        size = min([per_class, *(len(m) for m in members.values() if len(m))])
        for name, positions in members.items():
            if not len(positions):
                continue
            picked = rng.choice(positions, min(size, len(positions)), replace=False)
            values = linguistic_metrics([sets[name].texts[i] for i in sorted(picked)])
            for metric, value in values.items():
                rows["dataset"].append(name)
                rows["class"].append(label)
                rows["metric"].append(metric)
                rows["value"].append(None if value != value else float(value))
                rows["n"].append(len(picked))
    return pa.Table.from_pydict(rows, schema=LINGUISTIC_SCHEMA)


log = logging.getLogger(__name__)


def grid_data(ctx: StageContext, judges: tuple[str, ...] = (TFIDF,), work: Path | None = None):
    """What every cell of the utility grid reads: seed, reserve, test and synthetic posts, with
    their sentence embeddings when the embedding judge runs (through the embedding cache: the
    evaluation later finds them there)."""
    from mpsynth.labelled.utility import GridData, Labelled

    labelled = ctx.config.labelled
    chosen = json.loads(ctx.path("cues", "classifier.json").read_text())
    classes = chosen["classes"]

    def part(texts: list[str], labels: list[str]) -> Labelled:
        return Labelled(texts, np.array([classes.index(label) for label in labels], dtype=np.int64))

    parts = {
        "seed": part(*labelled_texts(ctx, ("seed",))),
        "reserve": part(*labelled_texts(ctx, ("reserve",))),
        "test": part(*labelled_texts(ctx, ("test",))),
    }
    synthetic = {}
    for path in sorted(ctx.path("postprocess", "synthetic").glob("*.parquet")):
        table = pq.read_table(path, columns=["text", "label"])
        synthetic[path.stem] = part(
            table.column("text").to_pylist(), table.column("label").to_pylist()
        )
    if EMBEDDINGS in judges:
        everything = [*parts.values(), *synthetic.values()]
        vectors = judge_vectors(
            ctx, [t for p in everything for t in p.texts], work or ctx.run.root / ".judge"
        )
        start = 0
        for key, holder in [*((k, parts) for k in parts), *((k, synthetic) for k in synthetic)]:
            mine = holder[key]
            holder[key] = Labelled(
                mine.texts, mine.labels, vectors[start : start + len(mine.texts)]
            )
            start += len(mine.texts)
    targets = json.loads(ctx.path("pools", "targets.json").read_text())
    return GridData(
        classes=classes,
        kind=chosen["chosen"],
        seed=parts["seed"],
        reserve=parts["reserve"],
        test=parts["test"],
        synthetic=synthetic,
        real_mix={classes.index(c): n for c, n in targets.items()},
        max_features=labelled.cues.max_features,
        min_df=labelled.cues.min_df,
    )


def judge_vectors(ctx: StageContext, texts: list[str], work: Path) -> np.ndarray:
    """The texts' vectors in the evaluation's similarity space (evaluate.embedder; the run's own
    topic space when that is None), each distinct text encoded once and cached."""
    from mpsynth.stages.embed import encode_texts, similarity_space

    encoded = encode_texts(ctx, *similarity_space(ctx), texts, work, "utility: embed for the judge")
    log.info(
        "utility: %d texts for the embedding judge, %d encoded, %d from the cache",
        len(texts),
        encoded.encoded,
        encoded.cached,
    )
    return encoded.vectors


def run_utility(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.distributed.tasks import map_tasks
    from mpsynth.labelled.utility import (
        CELLS_SCHEMA,
        linguistic_by_class,
        plan_cells,
        run_cell,
        summarise,
    )

    labelled = ctx.config.labelled
    judges = tuple(labelled.utility.judges)
    data = grid_data(ctx, judges, out / ".judge")
    seed, reserve, test, synthetic, classes = (
        data.seed,
        data.reserve,
        data.test,
        data.synthetic,
        data.classes,
    )
    cells, skipped = plan_cells(
        data, labelled.utility.added, labelled.utility.repeats, ctx.config.seed, judges
    )
    for note in skipped:
        log.warning("utility: skipped %s", note)
    log.info(
        "utility: %d cells (%s classifier; seed %d, reserve %d, test %d posts)",
        len(cells),
        data.kind,
        len(seed.texts),
        len(reserve.texts),
        len(test.texts),
    )
    started = time.perf_counter()
    results = map_tasks(
        run_cell,
        cells,
        data,
        1.0,
        "utility: training classifiers",
        resources=ctx.config.ray.resources_for("utility"),
    )
    seconds = time.perf_counter() - started
    table = pa.Table.from_pylist(results, schema=CELLS_SCHEMA)
    summary = summarise(
        table,
        test.labels,
        classes,
        labelled.utility.bootstrap_samples,
        labelled.utility.confidence,
        ctx.config.seed,
    )
    write_table(table, out / "cells.parquet")
    write_table(summary, out / "summary.parquet")
    training_counts = np.bincount(
        np.concatenate([seed.labels, reserve.labels]), minlength=len(classes)
    )
    minority = classes[int(np.argmin(training_counts))]
    linguistic = linguistic_by_class(
        {"real": seed, **synthetic}, classes, per_class=500, seed=ctx.config.seed
    )
    write_table(linguistic, out / "linguistic.parquet")
    info = {
        "classes": classes,
        "minority": minority,
        "classifier": data.kind,
        "judges": list(judges),
        "posts": {"seed": len(seed.texts), "reserve": len(reserve.texts), "test": len(test.texts)},
        "confidence": labelled.utility.confidence,
        "cells": len(cells),
        "skipped": skipped,
        "grid_seconds": round(seconds, 2),
        "cell_seconds_total": round(float(sum(r["seconds"] for r in results)), 2),
    }
    (out / "utility.json").write_text(json.dumps(info, indent=2) + "\n")
    baseline = summary.filter(pc.equal(summary.column("added"), 0)).to_pylist()
    macro = [r for r in baseline if r["class"] is None]
    if macro:
        log.info(
            "utility: seed alone macro-F1 %.3f; %d cells in %.1fs",
            macro[0]["f1"],
            len(cells),
            seconds,
        )
    return {"cells": len(cells), "seconds": round(seconds, 1)}
