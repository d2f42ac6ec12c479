"""The utility grid's parts: draws, cells, the measures (single- and multi-label), bootstrap
summaries."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import f1_score, jaccard_score

from mpsynth.labelled.scores import (
    bitmasks,
    indicators,
    linguistic_by_class,
    resample_weights,
    summarise,
    weighted_scores,
)
from mpsynth.labelled.utility import (
    CELLS_SCHEMA,
    EMBEDDINGS,
    REAL,
    SEED_ONLY,
    TFIDF,
    Cell,
    GridData,
    Labelled,
    draw,
    embedding_judge,
    plan_cells,
    run_cell,
    training_rows,
    training_set,
)
from tests.conftest import read_rows


@pytest.fixture(scope="module")
def grid() -> GridData:
    rows = read_rows("trac1_aggression.csv")
    classes = ["CAG", "NAG", "OAG"]

    def part(subset):
        return Labelled(
            [r["text"] for r in subset], np.array([classes.index(r["label"]) for r in subset])
        )

    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"].startswith("test")]
    return GridData(
        classes=classes,
        kind="logistic",
        seed=part(train[:400]),
        reserve=part(train[400:]),
        test=part(test),
        # a stand-in synthetic set: the dev posts, every OAG post repeated to make it lopsided
        synthetic={"dev": part([r for r in rows if r["split"] == "dev"])},
        real_mix={0: 1, 1: 1, 2: 2},
        max_features=20_000,
        min_df=2,
    )


def test_every_measure_matches_scikit_learn_single_and_multi_label():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, size=300)
    predicted = np.where(rng.random(300) < 0.6, truth, rng.integers(0, 4, size=300))
    predicted[:100] = 0  # a stretch where only one class is predicted
    found = weighted_scores(
        indicators(truth, 4, False), indicators(predicted, 4, False), np.ones((1, 300))
    )
    expected = f1_score(truth, predicted, labels=[0, 1, 2, 3], average=None, zero_division=0)
    np.testing.assert_allclose(found["f1"][0], expected)
    assert found["micro_f1"][0] == pytest.approx((truth == predicted).mean())  # = accuracy
    # multi-label: indicators through their stored bitmasks
    many = rng.random((300, 5)) < 0.3
    guess = np.where(rng.random((300, 5)) < 0.8, many, ~many)
    stored = indicators(bitmasks(guess), 5, True)
    assert (stored == guess).all()
    found = weighted_scores(many, stored, np.ones((1, 300)))
    np.testing.assert_allclose(found["f1"][0], f1_score(many, guess, average=None, zero_division=0))
    assert found["micro_f1"][0] == pytest.approx(f1_score(many, guess, average="micro"))
    assert found["jaccard"][0] == pytest.approx(
        jaccard_score(many, guess, average="samples", zero_division=1)
    )
    # a resample's weights count each drawn post as often as it is drawn
    weights = resample_weights(300, 3, np.random.default_rng(1))
    assert weights.sum(axis=1).tolist() == [300, 300, 300]
    drawn = np.repeat(np.arange(300), weights[0])
    again = weighted_scores(many[drawn], guess[drawn], np.ones((1, len(drawn))))
    once = weighted_scores(many, guess, weights[:1])
    for measure in ("micro_f1", "jaccard", "macro_f1"):
        assert once[measure][0] == pytest.approx(again[measure][0])


def test_draw_follows_the_mix_and_fills_a_short_class():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 5)
    source = Labelled([str(i) for i in range(len(labels))], labels)
    rng = np.random.default_rng(1)
    picked = draw(source, 40, np.array([1.0, 1.0, 2.0]), rng)  # wants 10, 10, 20: class 2 has 5
    assert len(picked) == 40 and len(set(picked.tolist())) == 40
    counts = np.bincount(labels[picked], minlength=3)
    assert counts[2] == 5 and counts[0] >= 10 and counts[1] >= 10


def test_plan_skips_counts_a_source_cannot_supply(grid):
    cells, skipped = plan_cells(grid, [100, 5000], repeats=2, seed=0)
    strategies = {c.strategy for c in cells}
    assert strategies == {SEED_ONLY, REAL, "+dev", "dev alone"}
    assert {c.added for c in cells if c.strategy != SEED_ONLY} == {100}
    assert len(cells) == 1 + 3 * 2
    assert len(skipped) == 3 and all("5000" in note for note in skipped)
    assert len({c.seed for c in cells}) == len(cells)  # every draw its own seed


def test_training_sets_hold_the_seed_plus_the_draw_or_the_draw_alone(grid):
    added = training_set(grid, Cell("+dev", 100, 0, 7))
    alone = training_set(grid, Cell("dev alone", 100, 0, 7))
    real = training_set(grid, Cell(REAL, 100, 0, 7))
    assert len(added[0]) == len(grid.seed.texts) + 100
    assert added[0][: len(grid.seed.texts)] == grid.seed.texts
    assert alone[0] == added[0][len(grid.seed.texts) :]  # same seed, same draw
    real_added = real[1][len(grid.seed.texts) :]
    assert np.bincount(real_added, minlength=3).tolist() == [25, 25, 50]  # real_mix 1:1:2
    test_texts = set(grid.test.texts)
    for texts, _ in (added, alone, real):
        assert not test_texts & set(texts)


def test_cells_score_on_the_test_split_and_summaries_bracket_the_mean(grid):
    cells = [Cell(SEED_ONLY, 0, 0, 0)] + [Cell(REAL, 300, r, 10 + r) for r in range(3)]
    results = [run_cell(c, grid) for c in cells]
    for result in results:
        assert len(result["predictions"]) == len(grid.test.texts)
        assert result["macro_f1"] == pytest.approx(np.mean(result["f1"]))
    table = pa.Table.from_pylist(results, schema=CELLS_SCHEMA)
    truth = grid.member(grid.test)
    summary = summarise(table, truth, grid.classes, 300, 0.95, seed=0).to_pylist()
    assert {r["measure"] for r in summary} == {"macro_f1", "f1"}  # single-label: as before
    macro = {r["strategy"]: r for r in summary if r["measure"] == "macro_f1"}
    assert all(r["class"] is None for r in macro.values())
    assert macro[REAL]["repeats"] == 3 and macro[SEED_ONLY]["repeats"] == 1
    assert macro[REAL]["value"] == pytest.approx(np.mean([r["macro_f1"] for r in results[1:]]))
    for row in summary:
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert macro[SEED_ONLY]["repeat_sd"] is None and macro[REAL]["repeat_sd"] >= 0
    # 300 more real posts help a 400-post seed
    assert macro[REAL]["value"] > macro[SEED_ONLY]["value"]


def test_the_embedding_judge_trains_on_the_same_draws_and_summarises_apart(grid):
    """Vectors of the texts (hashed words reduced to 64 dimensions, a stand-in for sentence
    embeddings): the judge must train on the same draw as the TF-IDF one, by each post's own
    vector."""
    from dataclasses import replace

    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer

    parts = [grid.seed, grid.reserve, grid.test, grid.synthetic["dev"]]
    hashed = HashingVectorizer(n_features=2**14).transform([t for p in parts for t in p.texts])
    vectors = TruncatedSVD(64, random_state=0).fit_transform(hashed)
    starts = np.cumsum([0, *(len(p.texts) for p in parts)])
    seed, reserve, test, dev = (
        Labelled(p.texts, p.labels, vectors[a:b])
        for p, a, b in zip(parts, starts[:-1], starts[1:], strict=True)
    )
    judged = replace(grid, seed=seed, reserve=reserve, test=test, synthetic={"dev": dev})
    cells, _ = plan_cells(judged, [200], repeats=2, seed=0, judges=(TFIDF, EMBEDDINGS))
    assert len(cells) == 2 * (1 + 3 * 2)  # every cell once per judge, with the same draw seed
    pairs = {(c.strategy, c.repeat): set() for c in cells}
    for cell in cells:
        pairs[(cell.strategy, cell.repeat)].add(cell.seed)
    assert all(len(seeds) == 1 for seeds in pairs.values())
    both = [Cell(REAL, 300, 0, 11, judge) for judge in (TFIDF, EMBEDDINGS)]
    results = [run_cell(c, judged) for c in both]
    assert results[0]["train_posts"] == results[1]["train_posts"] == len(seed.texts) + 300
    # the judge saw exactly the cell's rows, by their own vectors
    rows = training_rows(judged, both[1])
    expected = embedding_judge().fit(
        np.vstack([p.vectors[r] for p, r in rows]), np.concatenate([p.labels[r] for p, r in rows])
    )
    assert results[1]["predictions"] == expected.predict(test.vectors).tolist()
    assert results[0]["predictions"] != results[1]["predictions"]  # another model, not a copy
    assert len(set(results[1]["predictions"])) > 1
    table = pa.Table.from_pylist(results, schema=CELLS_SCHEMA)
    summary = summarise(table, judged.member(test), grid.classes, 50, 0.95, seed=0).to_pylist()
    assert {(r["judge"], r["class"]) for r in summary if r["measure"] == "macro_f1"} == {
        (TFIDF, None),
        (EMBEDDINGS, None),
    }


def test_linguistic_measures_compare_equal_sized_samples(grid):
    table = linguistic_by_class(
        {"real": grid.seed, "dev": grid.synthetic["dev"]}, grid, per_class=80, seed=0
    ).to_pylist()
    for label in grid.classes:
        sizes = {r["n"] for r in table if r["class"] == label}
        assert len(sizes) == 1 and sizes.pop() <= 80
    metrics = {r["metric"] for r in table}
    assert {"vocabulary", "mattr", "pronouns_per_token", "share_with_temporal"} <= metrics


@pytest.fixture(scope="module")
def multi_grid() -> GridData:
    """GoEmotions' Ekman emotions as they come: a post holds one or several."""
    rows = [r for r in read_rows("goemotions.csv") if r["label_ekman"]]
    labels = ["+".join(sorted(set(r["label_ekman"].split(";")))) for r in rows]
    classes = sorted({c for label in labels for c in label.split("+")})
    units = list(classes) + sorted(set(labels) - set(classes))

    def part(picked):
        return Labelled(
            [rows[i]["text"] for i in picked], np.array([units.index(labels[i]) for i in picked])
        )

    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    test = [i for i, r in enumerate(rows) if r["split"] != "train"]
    return GridData(
        classes=classes,
        kind="logistic",
        seed=part(train[:500]),
        reserve=part(train[500:]),
        test=part(test),
        synthetic={},
        real_mix=dict.fromkeys(range(len(units)), 1),
        max_features=20_000,
        min_df=2,
        units=units,
        multi_label=True,
    )


def test_a_multi_label_grid_predicts_class_sets_and_scores_them_in_the_tasks_own_measures(
    multi_grid,
):
    grid = multi_grid
    truth = grid.member(grid.test)
    assert (truth.sum(axis=1) > 1).sum() > 20  # the test posts do hold several classes
    cells = [Cell(SEED_ONLY, 0, 0, 0)] + [Cell(REAL, 300, r, 10 + r) for r in range(2)]
    results = [run_cell(c, grid) for c in cells]
    for result in results:
        predicted = indicators(result["predictions"], len(grid.classes), True)
        assert predicted.any(axis=1).all()  # every post gets at least one class
        assert result["jaccard"] == pytest.approx(
            jaccard_score(truth, predicted, average="samples", zero_division=1)
        )
        assert result["micro_f1"] == pytest.approx(f1_score(truth, predicted, average="micro"))
        assert result["macro_f1"] == pytest.approx(
            f1_score(truth, predicted, average="macro", zero_division=0)
        )
    assert (indicators(results[1]["predictions"], len(grid.classes), True).sum(axis=1) > 1).any()
    table = pa.Table.from_pylist(results, schema=CELLS_SCHEMA)
    summary = summarise(table, truth, grid.classes, 200, 0.95, seed=0, multi_label=True)
    rows = summary.to_pylist()
    for measure in ("macro_f1", "micro_f1", "jaccard"):
        mine = {r["strategy"]: r for r in rows if r["measure"] == measure}
        assert set(mine) == {SEED_ONLY, REAL}
        assert mine[REAL]["value"] == pytest.approx(np.mean([r[measure] for r in results[1:]]))
        assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in mine.values())
    assert {r["class"] for r in rows if r["measure"] == "f1"} == set(grid.classes)


def test_the_embedding_judge_is_one_vs_rest_on_a_multi_label_grid(multi_grid):
    from dataclasses import replace

    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer

    grid = multi_grid
    parts = [grid.seed, grid.reserve, grid.test]
    hashed = HashingVectorizer(n_features=2**14).transform([t for p in parts for t in p.texts])
    vectors = TruncatedSVD(48, random_state=0).fit_transform(hashed)
    starts = np.cumsum([0, *(len(p.texts) for p in parts)])
    seed, reserve, test = (
        Labelled(p.texts, p.labels, vectors[a:b])
        for p, a, b in zip(parts, starts[:-1], starts[1:], strict=True)
    )
    judged = replace(grid, seed=seed, reserve=reserve, test=test)
    result = run_cell(Cell(SEED_ONLY, 0, 0, 0, EMBEDDINGS), judged)
    predicted = indicators(result["predictions"], len(grid.classes), True)
    assert predicted.any(axis=1).all() and len({tuple(p) for p in predicted}) > 1
    assert result["jaccard"] == pytest.approx(
        jaccard_score(judged.member(test), predicted, average="samples", zero_division=1)
    )


def test_an_empty_reserve_skips_the_real_arm_with_one_note(tmp_path):
    """`labelled.split.seed_size: null` leaves no reserve: the posts are read as none (no filter
    on an empty id list) and the grid plans no real cell, saying why once."""
    import types

    import pyarrow.parquet as pq

    from mpsynth.labelled.labels import labelled_texts
    from mpsynth.labelled.utility import REAL, GridData, Labelled, plan_cells

    (tmp_path / "labels").mkdir()
    (tmp_path / "ingest").mkdir()
    pq.write_table(
        pa.table({"id": ["a", "b"], "label": ["x", "y"], "split": ["seed", "test"]}),
        tmp_path / "labels" / "labels.parquet",
    )
    pq.write_table(
        pa.table({"id": ["a", "b"], "text": ["one", "two"]}), tmp_path / "ingest" / "posts.parquet"
    )
    ctx = types.SimpleNamespace(path=lambda stage, name: tmp_path / stage / name)
    assert labelled_texts(ctx, ("reserve",)) == ([], [])
    assert labelled_texts(ctx, ("seed",)) == (["one"], ["x"])
    empty = Labelled([], np.array([], dtype=np.int64))
    seed = Labelled(["one", "two"], np.array([0, 1]))
    data = GridData(["x", "y"], "logistic", seed, empty, seed, {"s": seed}, {0: 1, 1: 1}, 100, 1)
    cells, skipped = plan_cells(data, [1, 2], repeats=2, seed=0)
    assert not [c for c in cells if c.strategy == REAL]
    assert [c.strategy for c in cells].count("+s") == 4
    assert len([n for n in skipped if n.startswith(REAL)]) == 1 and "reserve is empty" in skipped[0]
