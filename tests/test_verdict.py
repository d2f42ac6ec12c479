"""The verdict: every synthetic value read against the held-out real posts' value (the ceiling)."""

from __future__ import annotations

import math

import pytest

from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.verdict import interconnection, verdicts


def row(dataset, metric, value, ci=None, family="lexical", platform="all"):
    return metric_row(family, metric, dataset, platform, value, 100, ci or (math.nan, math.nan))


def test_a_share_is_read_as_its_distance_from_real_beyond_the_holdouts():
    rows = [
        row("real", "share_with_urls", 0.30, (0.28, 0.32)),
        row("real-holdout", "share_with_urls", 0.32, (0.29, 0.35)),
        row("set-a", "share_with_urls", 0.50, (0.46, 0.54)),
        row("set-b", "share_with_urls", 0.29, (0.25, 0.33)),
    ]
    found = {v.dataset: v for v in verdicts(rows)}
    a, b = found["set-a"], found["set-b"]
    assert a.gap == pytest.approx(0.20 - 0.02) and a.real == 0.30 and a.ceiling == 0.32
    half = (0.03**2 + 0.04**2) ** 0.5
    assert (a.low, a.high) == pytest.approx((a.gap - half, a.gap + half))
    assert a.supported and not b.supported  # b is as near real as the holdout is
    assert list(found) == ["set-a", "set-b"]  # the largest supported gap first
    assert "real" not in found and "real-holdout" not in found


def test_a_comparison_is_read_as_its_distance_from_the_holdouts_value():
    rows = [
        row("real-holdout", "detectability_auc", 0.50, (0.47, 0.53), "detectability"),
        row("set", "detectability_auc", 0.62, (0.59, 0.65), "detectability"),
        row("real-holdout", "hashtag_set_overlap", 0.07),  # no interval on either side
        row("set", "hashtag_set_overlap", 0.19),
    ]
    found = {v.metric: v for v in verdicts(rows)}
    auc, overlap = found["detectability_auc"], found["hashtag_set_overlap"]
    assert auc.real is None and auc.gap == pytest.approx(0.12) and auc.supported
    assert overlap.low is None and not overlap.supported
    assert [v.metric for v in verdicts(rows)] == ["detectability_auc", "hashtag_set_overlap"]


def test_what_a_set_matches_by_construction_is_marked_and_ranked_last():
    rows = [
        row("real", "posts_per_account_gini", 0.29, (0.27, 0.31), "structure"),
        row("real-holdout", "posts_per_account_gini", 0.12, (0.08, 0.16), "structure"),
        row("set", "posts_per_account_gini", 0.27, (0.25, 0.29), "structure"),
        row("real-holdout", "detectability_auc", 0.50, (0.45, 0.55), "detectability"),
        row("set", "detectability_auc", 0.52, (0.47, 0.57), "detectability"),
    ]
    found = verdicts(rows)
    assert [v.metric for v in found] == ["detectability_auc", "posts_per_account_gini"]
    assert found[-1].by_construction and not found[0].by_construction


def test_a_run_without_a_holdout_has_no_verdict():
    assert verdicts([row("real", "share_with_urls", 0.3), row("set", "share_with_urls", 0.5)]) == []


@pytest.mark.parametrize(
    ("mptm", "per_platform", "says"),
    [
        ((0.30, None), (0.10, None), "carry no interval"),
        ((0.30, (0.25, 0.35)), (0.10, (0.05, 0.15)), "MPTM gives more cross-platform"),
        ((0.30, (0.20, 0.40)), (0.25, (0.15, 0.35)), "no difference in cross-platform"),
        ((0.05, (0.03, 0.07)), (0.30, (0.25, 0.35)), "MPTM gives less cross-platform"),
    ],
)
def test_the_interconnection_question_is_answered_as_the_intervals_allow(mptm, per_platform, says):
    metric = "cross_platform_cross_platform_edge_share"
    rows = [
        row("markov-mptm", metric, mptm[0], mptm[1], "network"),
        row("markov-per_platform", metric, per_platform[0], per_platform[1], "network"),
    ]
    [sentence] = interconnection(rows)
    assert says in sentence and f"markov-mptm {mptm[0]:.3f}" in sentence


def test_a_value_that_rounds_to_zero_is_never_minus_zero():
    from mpsynth.report.structure import _value

    shown = _value({"metric": "cross_platform_modularity", "value": -1e-17, "ci_low": -0.0004,
                    "ci_high": 0.002})  # fmt: skip
    assert shown.startswith("0.000") and "-0.000" not in shown and "[0.000, 0.002]" in shown


def test_over_several_generations_a_set_is_read_by_its_mean_and_t_interval():
    from mpsynth.stages.replicates import spread_table

    per_generation = [0.40, 0.50, 0.60]  # three generations of one set; the holdout fixed
    rows = [
        {
            **row("real-holdout", "detectability_auc", 0.50, (0.48, 0.52), "detectability"),
            "replicate": k,
        }
        for k in (1, 2, 3)
    ] + [
        {
            **row("set", "detectability_auc", v, (v - 0.01, v + 0.01), "detectability"),
            "replicate": k,
        }
        for k, v in enumerate(per_generation, start=1)
    ]
    import pyarrow as pa

    spread = {
        (r["family"], r["metric"], r["dataset"], r["platform"]): r
        for r in spread_table(pa.Table.from_pylist(rows)).to_pylist()
    }
    first = [r for r in rows if r["replicate"] == 1]
    alone, over = verdicts(first)[0], verdicts(first, spread)[0]
    assert alone.value == 0.40 and alone.supported  # one generation looks far off
    assert over.value == pytest.approx(0.50) and over.replicates == 3
    assert over.sd == pytest.approx(0.10)
    t = 4.302653  # Student's t, 2 degrees of freedom, 97.5%
    half = ((t * 0.10 / 3**0.5) ** 2 + 0.02**2) ** 0.5
    assert (over.low, over.high) == pytest.approx((-half, half), abs=1e-6)
    assert not over.supported  # three generations cannot tell it from the ceiling
    assert spread[("detectability", "detectability_auc", "real-holdout", "all")]["sd"] == 0.0


def test_a_metric_alike_in_every_generation_without_an_interval_of_its_own_gets_none():
    import pyarrow as pa

    from mpsynth.stages.replicates import spread_table

    rows = [
        {**row(d, "top20_PERSON_found", v, family="entities"), "replicate": k}
        for k in (1, 2, 3)
        for d, v in (("real-holdout", 1.0), ("set", 0.95))  # 0.95 thrice: a float std of 1e-16
    ]
    spread = {
        (r["family"], r["metric"], r["dataset"], r["platform"]): r
        for r in spread_table(pa.Table.from_pylist(rows)).to_pylist()
    }
    (found,) = verdicts([r for r in rows if r["replicate"] == 1], spread)
    assert found.gap == pytest.approx(-0.05) and found.sd == 0.0
    assert found.low is None and not found.supported  # three equal draws prove nothing


def test_the_interconnection_question_reads_the_generations_where_there_are_several():
    import pyarrow as pa

    from mpsynth.stages.replicates import spread_table

    metric = "cross_platform_cross_platform_edge_share"
    rows = []
    for k, (mptm, base) in enumerate([(0.030, 0.010), (0.034, 0.012), (0.032, 0.008)], start=1):
        rows.append({**row("m-mptm", metric, mptm, (mptm, mptm), "structure"), "replicate": k})
        rows.append(
            {**row("m-per_platform", metric, base, (base, base), "structure"), "replicate": k}
        )
    spread = {
        (r["family"], r["metric"], r["dataset"], r["platform"]): r
        for r in spread_table(pa.Table.from_pylist(rows)).to_pylist()
    }
    first = [r for r in rows if r["replicate"] == 1]
    (sentence,) = interconnection(first, spread)
    assert sentence.startswith("MPTM gives more cross-platform interconnection")
    assert "0.032 against m-per_platform 0.010 (means over 3 generations)" in sentence
