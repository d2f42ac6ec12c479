"""Classes and splits of a labelled run, on the bundled GoEmotions and TRAC-1 samples."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from mpsynth.config.labelled import LabelledConfig
from mpsynth.core.errors import ConfigError, InputError
from mpsynth.labelled.labels import (
    GOEMOTIONS_EKMAN,
    assign_labels,
    label_mapping,
    single_label,
)
from mpsynth.labelled.pools import class_targets
from tests.conftest import read_rows


def _posts(rows, split=True) -> pa.Table:
    return pa.table(
        {
            "id": [r["id"] for r in rows],
            "label": [r["label"] for r in rows],
            "split": [r["split"] if split else None for r in rows],
        }
    )


def test_ekman_grouping_keeps_one_class_and_names_the_clash():
    assert single_label("desire;optimism", ";", GOEMOTIONS_EKMAN) == "joy"
    assert single_label("grief;sadness", ";", GOEMOTIONS_EKMAN) == "sadness"
    assert single_label("", ";", GOEMOTIONS_EKMAN) is None
    with pytest.raises(ValueError, match="anger and joy"):
        single_label("annoyance;amusement", ";", GOEMOTIONS_EKMAN)


def test_goemotions_multi_label_rows_are_dropped_and_counted():
    rows = read_rows("goemotions.csv")
    config = LabelledConfig(
        separator=";",
        multi_label=False,
        mapping="goemotions_ekman",
        split={"values": {}, "seed_size": 300},
    )
    result = assign_labels(_posts(rows), config, seed=1)
    # independently: rows whose emotions fall in more than one Ekman group
    expected = sum(len({GOEMOTIONS_EKMAN[e] for e in r["label"].split(";")}) > 1 for r in rows)
    assert expected > 100
    assert result.summary["dropped"] == {"multi-label": expected}
    assert result.dropped.num_rows == expected
    assert result.labels.num_rows == len(rows) - expected
    assert set(result.labels["label"].to_pylist()) <= set(GOEMOTIONS_EKMAN.values())
    roles = Counter(result.labels["split"].to_pylist())
    assert roles["seed"] == 300
    published_train = sum(
        r["split"] == "train" and len({GOEMOTIONS_EKMAN[e] for e in r["label"].split(";")}) == 1
        for r in rows
    )
    assert roles["seed"] + roles["reserve"] == published_train


def test_trac_split_values_must_be_mapped_and_then_are_kept():
    rows = read_rows("trac1_aggression.csv")
    with pytest.raises(InputError, match=r"test_fb.*labelled\.split\.values"):
        assign_labels(_posts(rows), LabelledConfig(), seed=0)
    config = LabelledConfig(split={"values": {"test_fb": "test", "test_tw": "test"}})
    result = assign_labels(_posts(rows), config, seed=0)
    role_of = dict(
        zip(result.labels["id"].to_pylist(), result.labels["split"].to_pylist(), strict=True)
    )
    for row in rows:
        published = row["split"]
        role = role_of[row["id"]]
        assert role == "test" if published.startswith("test") else role != "test"
        assert (role == "validation") == (published == "dev")


def test_a_random_split_is_stratified_seeded_and_disjoint():
    rows = read_rows("trac1_aggression.csv")
    config = LabelledConfig(split={"mode": "random", "seed_size": 200, "test_fraction": 0.25})
    first = assign_labels(_posts(rows, split=False), config, seed=5)
    again = assign_labels(_posts(rows, split=False), config, seed=5)
    assert first.labels.equals(again.labels)
    roles = Counter(first.labels["split"].to_pylist())
    assert roles["test"] == pytest.approx(0.25 * len(rows), abs=2)
    assert roles["seed"] == 200
    overall = Counter(r["label"] for r in rows)
    test_labels = Counter(
        label
        for label, role in zip(
            first.labels["label"].to_pylist(), first.labels["split"].to_pylist(), strict=True
        )
        if role == "test"
    )
    for label, count in overall.items():  # stratified: each class's share within a point or two
        assert test_labels[label] / roles["test"] == pytest.approx(count / len(rows), abs=0.02)


def _published(drop: str) -> list[dict]:
    """The bundled GoEmotions rows (published train, dev and test splits) without one split."""
    return [
        r for r in read_rows("goemotions.csv") if r["split"] != drop and ";" not in r["label_ekman"]
    ]


@pytest.mark.parametrize(
    ("drop", "values", "carved", "kept"),
    [
        ("dev", {}, "validation", {"test": "split column (test)"}),  # train/test only
        ("test", {}, "test", {"validation": "split column (dev)"}),  # train/dev only
        ("test", {"dev": "test"}, "validation", {"test": "split column (dev)"}),  # dev as test
    ],
)
def test_a_missing_split_is_carved_from_train_and_the_published_ones_kept(
    drop, values, carved, kept
):
    rows = _published(drop)
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "label": [r["label_ekman"] for r in rows],
            "split": [r["split"] for r in rows],
        }
    )
    config = LabelledConfig(split={"values": values, "seed_size": 200})
    result = assign_labels(table, config, seed=3)
    role = dict(
        zip(result.labels["id"].to_pylist(), result.labels["split"].to_pylist(), strict=True)
    )
    published = {r["id"]: r["split"] for r in rows}
    kept_role, source = next(iter(kept.items()))
    given = "dev" if "dev" in source else "test"
    # the published split keeps its posts; the carved one comes from train posts only
    assert {i for i, r in role.items() if r == kept_role} == {
        i for i, s in published.items() if s == given
    }
    carved_ids = [i for i, r in role.items() if r == carved]
    assert carved_ids and all(published[i] == "train" for i in carved_ids)
    fraction = config.split.test_fraction if carved == "test" else config.split.validation_fraction
    assert len(carved_ids) == round(fraction * len(rows))
    sources = result.summary["sources"]
    assert sources[kept_role] == source
    assert sources[carved].startswith("carved from train")
    assert sources["seed"] == sources["reserve"] == "split column (train)"
    again = assign_labels(table, config, seed=3)  # seeded: the same carve again
    assert again.labels.equals(result.labels)


def test_a_split_column_without_train_is_refused_naming_its_values():
    rows = [r for r in _published("train") if r["split"] == "dev"]
    with pytest.raises(InputError, match=r"no labelled post falls in the train split.*\['dev'\]"):
        assign_labels(_posts(rows), LabelledConfig(), seed=0)


def test_a_mixed_split_column_is_refused():
    rows = read_rows("trac1_aggression.csv")[:50]
    table = _posts(rows).set_column(2, "split", pa.array([None] * 10 + ["train"] * 40))
    with pytest.raises(InputError, match="10 of 50 labelled posts have no split"):
        assign_labels(table, LabelledConfig(), seed=0)


def test_unknown_packaged_mapping_is_a_config_error():
    with pytest.raises(ConfigError, match="goemotions_ekman"):
        label_mapping(LabelledConfig(mapping="ekman"))


def test_balance_targets_fill_up_to_the_majority_then_spread():
    seed = {"anger": 430, "joy": 217, "optimism": 90, "sadness": 263}
    targets = class_targets(seed, "balance", 2000)
    assert sum(targets.values()) == 2000
    for label in seed:  # seed plus targets: every class even
        assert seed[label] + targets[label] == pytest.approx(430 + 320, abs=1)
    short = class_targets(seed, "balance", 360)
    assert short["anger"] == 0 and short["optimism"] > short["joy"] > short["sadness"]
    assert class_targets(seed, "equal", 8) == dict.fromkeys(seed, 2)
    assert class_targets(seed, {"joy": 5}, 100) == {
        "anger": 0,
        "joy": 5,
        "optimism": 0,
        "sadness": 0,
    }
    with pytest.raises(ConfigError, match="no class"):
        class_targets(seed, {"fear": 5}, 100)


def _config(tmp_path, data, **extra):
    from mpsynth.config import build_config

    return build_config(
        {"run_dir": str(tmp_path / "run"), "ingest": {"inputs": [{"path": str(data)}]}, **extra}
    )


def test_a_labelled_run_without_a_label_column_stops_before_any_work(tmp_path):
    from mpsynth.orchestration.pipeline import preflight
    from tests.conftest import TEST_DATA

    config = _config(tmp_path, TEST_DATA / "ira_tweets.csv", pipeline="labelled")
    with pytest.raises(InputError, match=r"ira_tweets.csv: no column 'label' \(mapped to label\)"):
        preflight(config)
    assert not (tmp_path / "run").exists()


def test_a_stage_outside_the_runs_pipeline_is_named(tmp_path):
    from mpsynth.core.errors import StageError
    from mpsynth.orchestration.pipeline import run_pipeline
    from tests.conftest import TEST_DATA

    config = _config(tmp_path, TEST_DATA / "trac1_aggression.csv")
    with pytest.raises(StageError, match=r"'cues' is not part of the mptm pipeline; its stages"):
        run_pipeline(config, until="cues")
    assert not (tmp_path / "run").exists()


def test_a_multi_label_run_keeps_every_class_of_a_post_and_its_published_split():
    rows = read_rows("goemotions.csv")
    config = LabelledConfig(separator=";", mapping="goemotions_ekman", split={"seed_size": 300})
    assert config.is_multi_label  # inferred from the separator
    result = assign_labels(_posts(rows), config, seed=1)
    groups = {r["id"]: {GOEMOTIONS_EKMAN[e] for e in r["label"].split(";")} for r in rows}
    label_of = dict(
        zip(result.labels["id"].to_pylist(), result.labels["label"].to_pylist(), strict=True)
    )
    assert len(label_of) == len(rows) and result.summary["dropped"] == {}  # nothing left out
    for post_id, label in label_of.items():
        assert label.split("+") == sorted(groups[post_id])
    several = [label for label in label_of.values() if "+" in label]
    assert len(several) == sum(len(g) > 1 for g in groups.values()) > 100
    roles = dict(
        zip(result.labels["id"].to_pylist(), result.labels["split"].to_pylist(), strict=True)
    )
    published = {r["id"]: r["split"] for r in rows}
    assert all((roles[i] == "test") == (published[i] == "test") for i in roles)
    # per class: the posts holding it, beside the combinations
    seed_posts = result.summary["class_posts"]["seed"]
    assert seed_posts["joy"] == sum(
        "joy" in label.split("+") for i, label in label_of.items() if roles[i] == "seed"
    )


def test_classes_kept_from_a_combination_and_a_class_that_holds_the_join_refused():
    rows = read_rows("goemotions.csv")
    config = LabelledConfig(
        separator=";",
        mapping="goemotions_ekman",
        classes=["anger", "joy", "sadness"],
        split={"seed_size": 300},
    )
    result = assign_labels(_posts(rows), config, seed=1)
    labels = set(result.labels["label"].to_pylist())
    assert {c for label in labels for c in label.split("+")} == {"anger", "joy", "sadness"}
    assert result.summary["dropped"]["class not in labelled.classes"] > 0
    with pytest.raises(ConfigError, match="joins classes"):
        assign_labels(_posts(rows), LabelledConfig(separator=";", mapping={"joy": "a+b"}), seed=1)


def test_a_raw_label_holding_the_join_is_refused_naming_the_label_and_post():
    rows = read_rows("goemotions.csv")[:200]
    rows[17] = {**rows[17], "label": "love+hate;joy"}
    with pytest.raises(InputError, match=rf"'love\+hate;joy' of post '{rows[17]['id']}'"):
        assign_labels(_posts(rows), LabelledConfig(separator=";"), seed=1)
    single = [{**r, "label": "OAG"} for r in rows[:100]] + [
        {**r, "label": "love+hate"} for r in rows[100:]
    ]
    with pytest.raises(InputError, match=r"holds '\+'"):
        assign_labels(_posts(single), LabelledConfig(), seed=1)


def test_a_separator_that_occurs_in_no_label_is_refused_naming_what_does():
    rows = [{**r, "label": r["label"].replace(";", "|")} for r in read_rows("goemotions.csv")]
    with pytest.raises(InputError, match=r"separator ';' occurs in no label.*'\|'"):
        assign_labels(_posts(rows), LabelledConfig(separator=";"), seed=1)


def test_a_class_without_a_seed_post_is_dropped_with_a_warning_naming_where_it_went(caplog):
    rows = [r for r in read_rows("trac1_aggression.csv") if r["split"] == "train"][:300]
    # one post of a class of its own, carved into validation by the stratified split
    rows.append({**rows[0], "id": "lonely", "label": "XAG", "split": "dev"})
    config = LabelledConfig(split={"values": {"dev": "validation"}, "seed_size": 150})
    with caplog.at_level("WARNING", logger="mpsynth.labelled.labels"):
        result = assign_labels(_posts(rows), config, seed=1)
    assert "XAG" not in set(result.labels["label"].to_pylist())
    assert result.dropped.to_pylist()[-1] == {
        "id": "lonely",
        "label": "XAG",
        "reason": "no seed post: its class has none",
    }
    assert "class 'XAG' has no seed post (its posts: 1 in validation)" in caplog.text
    assert result.summary["dropped"] == {"no seed post": 1}
