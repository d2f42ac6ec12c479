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

from mpsynth.labelled.classifier import TextClassifier, at_least_one, indicator
from mpsynth.labelled.labels import labelled_texts
from mpsynth.labelled.scores import bitmasks, indicators, linguistic_by_class, scores
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
        pa.field("micro_f1", pa.float64(), nullable=False),
        pa.field("jaccard", pa.float64(), nullable=False),
        pa.field("f1", pa.list_(pa.float64()), nullable=False),
        pa.field("predictions", pa.list_(pa.int64()), nullable=False),
        pa.field("seconds", pa.float64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class Labelled:
    """Texts and label indices of one part of the data, and their sentence embeddings (row-aligned;
    None when no embedding judge runs)."""

    texts: list[str]
    labels: np.ndarray  # indices into GridData.units
    vectors: np.ndarray | None = None


@dataclass(frozen=True)
class GridData:
    classes: list[str]
    kind: str  # classifier kind
    seed: Labelled
    reserve: Labelled
    test: Labelled
    synthetic: dict[str, Labelled]
    real_mix: dict[int, int]  # unit index -> weight of real additions
    max_features: int
    min_df: int
    # the labels posts carry: the classes (None), or a multi-label run's class combinations
    units: list[str] | None = None
    multi_label: bool = False

    @property
    def unit_names(self) -> list[str]:
        return self.units if self.units is not None else self.classes

    def member(self, part: Labelled) -> np.ndarray:
        """(posts, classes) booleans: the classes each post of `part` holds."""
        return indicator(self.unit_names, self.classes)[part.labels]


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
        if strategy == REAL and available == 0:
            skipped.append(
                f"{REAL}: the reserve is empty (labelled.split.seed_size puts every training "
                "post in the seed), so no real posts can be added"
            )
            continue
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
    n = len(data.unit_names)
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


def _embedding_predictions(data: GridData, vectors: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The embedding judge's predicted classes for the test posts, as (posts, classes) booleans:
    one model over the classes, or one binary model per class (multi-label)."""
    classes = len(data.classes)
    test = data.test.vectors
    if not data.multi_label:
        chosen = np.zeros((len(test), classes), dtype=bool)
        if len(np.unique(units)) == 1:  # a set holding one class: it can only say that class
            chosen[:, units[0]] = True
        else:
            chosen[np.arange(len(test)), embedding_judge().fit(vectors, units).predict(test)] = True
        return chosen
    truth = indicator(data.unit_names, data.classes)[units]
    proba = np.zeros((len(test), classes))
    for c in range(classes):
        if truth[:, c].all() or not truth[:, c].any():  # every post, or none: a constant
            proba[:, c] = float(truth[:, c].all())
        else:
            proba[:, c] = embedding_judge().fit(vectors, truth[:, c]).predict_proba(test)[:, 1]
    return at_least_one(proba)


def run_cell(cell: Cell, data: GridData) -> dict:
    """Train the cell's judge on its training set, predict the real test split."""
    started = time.perf_counter()
    n = len(data.classes)
    if cell.judge == EMBEDDINGS:
        parts = training_rows(data, cell)
        vectors = np.vstack([part.vectors[rows] for part, rows in parts])
        units = np.concatenate([part.labels[rows] for part, rows in parts])
        chosen = _embedding_predictions(data, vectors, units)
        train_posts = len(units)
    else:
        texts, units = training_set(data, cell)
        model = TextClassifier(
            data.kind, data.classes, 0, data.max_features, data.min_df, data.multi_label
        )
        model.fit(texts, [data.unit_names[i] for i in units])
        predicted = model.predict(data.test.texts)
        chosen = predicted if data.multi_label else indicators(predicted, n, False)
        train_posts = len(texts)
    found = scores(data.member(data.test), chosen)
    return {
        "judge": cell.judge,
        "strategy": cell.strategy,
        "added": cell.added,
        "repeat": cell.repeat,
        "train_posts": train_posts,
        "macro_f1": float(found["macro_f1"]),
        "micro_f1": float(found["micro_f1"]),
        "jaccard": float(found["jaccard"]),
        "f1": found["f1"].tolist(),
        # a class index per test post; multi-label: a bitmask of classes (bit c: class c)
        "predictions": (bitmasks(chosen) if data.multi_label else chosen.argmax(axis=1)).tolist(),
        "seconds": time.perf_counter() - started,
    }


log = logging.getLogger(__name__)


def grid_data(ctx: StageContext, judges: tuple[str, ...] = (TFIDF,), work: Path | None = None):
    """What every cell of the utility grid reads: seed, reserve, test and synthetic posts, with
    their sentence embeddings when the embedding judge runs (through the embedding cache: the
    evaluation later finds them there)."""
    from mpsynth.labelled.utility import GridData, Labelled

    labelled = ctx.config.labelled
    chosen = json.loads(ctx.path("cues", "classifier.json").read_text())
    classes = chosen["classes"]
    multi_label = chosen.get("multi_label", False)
    units: list[str] = list(classes)

    def part(texts: list[str], labels: list[str]) -> Labelled:
        for label in labels:  # a multi-label run's combinations, as they come
            if label not in units:
                units.append(label)
        return Labelled(texts, np.array([units.index(label) for label in labels], dtype=np.int64))

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
        real_mix={units.index(c): n for c, n in targets.items() if c in units},
        max_features=labelled.cues.max_features,
        min_df=labelled.cues.min_df,
        units=units if multi_label else None,
        multi_label=multi_label,
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
    from mpsynth.labelled.scores import summarise
    from mpsynth.labelled.utility import CELLS_SCHEMA, plan_cells, run_cell

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
        data.member(test),
        classes,
        labelled.utility.bootstrap_samples,
        labelled.utility.confidence,
        ctx.config.seed,
        data.multi_label,
    )
    write_table(table, out / "cells.parquet")
    write_table(summary, out / "summary.parquet")
    training_counts = data.member(seed).sum(axis=0) + data.member(reserve).sum(axis=0)
    minority = classes[int(np.argmin(training_counts))]
    linguistic = linguistic_by_class(
        {"real": seed, **synthetic}, data, per_class=500, seed=ctx.config.seed
    )
    write_table(linguistic, out / "linguistic.parquet")
    info = {
        "classes": classes,
        "minority": minority,
        "classifier": data.kind,
        "judges": list(judges),
        "multi_label": data.multi_label,
        "posts": {"seed": len(seed.texts), "reserve": len(reserve.texts), "test": len(test.texts)},
        "confidence": labelled.utility.confidence,
        "cells": len(cells),
        "skipped": skipped,
        "grid_seconds": round(seconds, 2),
        "cell_seconds_total": round(float(sum(r["seconds"] for r in results)), 2),
    }
    (out / "utility.json").write_text(json.dumps(info, indent=2) + "\n")
    baseline = summary.filter(pc.equal(summary.column("added"), 0)).to_pylist()
    macro = [r for r in baseline if r["measure"] == "macro_f1"]
    if macro:
        log.info(
            "utility: seed alone macro-F1 %.3f; %d cells in %.1fs",
            macro[0]["value"],
            len(cells),
            seconds,
        )
    return {"cells": len(cells), "seconds": round(seconds, 1)}
