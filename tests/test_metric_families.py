"""Sentiment, similarity, topic overlap, linguistic and detectability metrics, on real posts with
values checked by hand, and the identities a fidelity suite must satisfy."""

from __future__ import annotations

import numpy as np
import pytest

from mpsynth.metrics.detectability import GreedyStratifiedGroupKFold, detectability_auc
from mpsynth.metrics.linguistic import distinct_n, linguistic_metrics, mattr, tokenize
from mpsynth.metrics.sentiment import class_shares, sentiment_classes, vader_compound
from mpsynth.metrics.similarity import mean_within_similarity, nearest_both_ways, shares_above
from mpsynth.metrics.stats import js_divergence, ks_statistic
from mpsynth.metrics.topic_overlap import topic_overlap


@pytest.fixture(scope="module")
def by_id(demo_rows):
    return {r["id"]: r for r in demo_rows}


def test_sentiment_classes_of_real_posts(by_id):
    texts = [by_id[i]["text"] for i in ("10_gop#231", "4MySquad3312143142#2432")]
    # "desperately need ..." reads negative; "respectful" carries the second one positive
    assert sentiment_classes(vader_compound(texts)).tolist() == [0, 2]
    assert sentiment_classes(np.array([-0.05, -0.04, 0.0, 0.04, 0.05])).tolist() == [0, 1, 1, 1, 2]


def test_sentiment_guard_bounds_pathological_posts():
    huge = "terrible awful " * 200_000  # 3 MB of text scores like its first 5,000 characters
    assert vader_compound([huge])[0] == vader_compound([huge[:5_000]])[0]


def test_js_divergence_bounds():
    assert (
        js_divergence(class_shares(np.array([0, 1, 2, 2])), class_shares(np.array([2, 2, 1, 0])))
        == 0.0
    )
    assert js_divergence(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(1.0)


def test_nearest_similarity_and_thresholds():
    real = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    synthetic = np.array([[0.8, 0.6], [-1.0, 0.0]], dtype=np.float32)
    to_real, to_synthetic = nearest_both_ways(synthetic, real)
    np.testing.assert_allclose(to_real, [0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(to_synthetic, [0.8, 0.6], atol=1e-6)
    assert shares_above(to_real, (0.6, 0.7, 0.8, 0.9)) == {0.6: 0.5, 0.7: 0.5, 0.8: 0.5, 0.9: 0.0}
    assert shares_above(nearest_both_ways(real, real)[0], (0.6, 0.7, 0.8)) == {
        0.6: 1.0,
        0.7: 1.0,
        0.8: 1.0,
    }
    # an empty set: nothing to be near (the least similarity), and nothing asked of it
    empty = np.zeros((0, 2), dtype=np.float32)
    nothing, none_asked = nearest_both_ways(synthetic, empty)
    assert nothing.tolist() == [-1.0, -1.0] and none_asked.size == 0


def test_both_directions_in_blocks_equal_the_whole_similarity_matrix():
    """Row and column maxima gathered block by block (blocks far smaller than the matrix, and not
    dividing it) equal those of the whole matrix at once."""
    rng = np.random.default_rng(5)
    synthetic, real = (rng.standard_normal((n, 24)).astype(np.float32) for n in (203, 157))
    synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    real[:20] = synthetic[:20]  # exact counterparts
    whole = synthetic.astype(np.float64) @ real.T.astype(np.float64)
    to_real, to_synthetic = nearest_both_ways(synthetic, real, block_elements=157 * 7 + 3)
    np.testing.assert_allclose(to_real, whole.max(axis=1), atol=1e-6)
    np.testing.assert_allclose(to_synthetic, whole.max(axis=0), atol=1e-6)
    assert (to_real[:20] >= 1 - 1e-5).all()


def test_within_similarity_never_pairs_a_post_with_itself():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)  # orthogonal: every pair is 0
    assert mean_within_similarity(vectors) == 0.0


def test_within_similarity_is_the_exact_mean_over_every_pair():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    gram = vectors @ vectors.T
    brute = (gram.sum() - np.trace(gram)) / (300 * 299)
    assert mean_within_similarity(vectors) == pytest.approx(brute, abs=1e-12)


def test_topic_overlap_by_hand():
    real = np.array([0, 0, 1, 2, 2, -1])
    synthetic = np.array([0, 0, 0, -1])
    overlap = topic_overlap(real, synthetic, n_topics=3)
    assert overlap["real_topics_covered"] == pytest.approx(1 / 3)
    assert overlap["distinct_topics"] == 1.0 and overlap["outlier_share"] == 0.25
    assert topic_overlap(real, real, 3)["topic_js_divergence"] == 0.0


def test_linguistic_counts_on_a_real_post(by_id):
    text = by_id["10_gop#231"]["text"]  # '@realDonaldTrump We desperately need #TaxReform. Lets ...
    assert tokenize(text) == [
        "realdonaldtrump",
        "we",
        "desperately",
        "need",
        "taxreform",
        "lets",
        "get",
        "it",
        "done",
        "mr",
        "president",
    ]
    metrics = linguistic_metrics([text])
    assert metrics["vocabulary"] == 11 and metrics["pronouns_per_token"] == pytest.approx(1 / 11)
    assert metrics["share_with_temporal"] == 0.0
    assert tokenize(by_id["4MySquad3312143142#2432"]["text"])[-1] == "said"  # the URL is left out


def test_mattr_distinct_n_and_temporal_by_hand():
    assert mattr(["a", "b", "a", "b"], window=3) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "a b"], 1) == 0.5
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(2 / 3)  # (a b) (b a) (a b)
    texts = ["Vote tomorrow!", "see you at 7pm", "in 2016 they lied", "no time words here"]
    assert linguistic_metrics(texts)["share_with_temporal"] == 0.75


@pytest.mark.slow
def test_detectability_is_chance_for_real_vs_real_and_high_across_platforms(demo_rows):
    tweets = [r["text"] for r in demo_rows if r["platform"] == "twitter"]
    reddit = [r["text"] for r in demo_rows if r["platform"] == "reddit"]
    rng = np.random.default_rng(1)
    shuffled = [tweets[i] for i in rng.permutation(len(tweets))]
    # two random halves of the same real posts: the classifier can only guess
    assert abs(detectability_auc(shuffled[:500], shuffled[500:], seed=0) - 0.5) < 0.08
    # Twitter against Reddit is easy: the metric does detect a difference when there is one
    assert detectability_auc(tweets, reddit, seed=0) > 0.9


def test_hashtag_sets_and_length_distance_by_hand(by_id):
    from mpsynth.metrics.lexical import hashtag_overlap, hashtag_set, length_distance

    first = by_id["10_gop#231"]["text"]  # #TaxReform
    second = by_id["4MySquad3312143142#297"]["text"]  # #USA ... #SoSad #BLM
    assert hashtag_set([first]) == {"taxreform"}
    assert hashtag_set([second]) == {"usa", "sosad", "blm"}
    assert hashtag_overlap(hashtag_set([first, second]), {"blm", "maga"}) == pytest.approx(1 / 5)
    assert length_distance([first, second], [second, first]) == 0.0
    assert length_distance(["a" * 10] * 3, ["a" * 100] * 3) == 1.0


def test_transformer_sentiment_model_loads_by_path_offline(tmp_path, demo_rows):
    from mpsynth.config import TransformersSentimentConfig, VaderSentimentConfig
    from mpsynth.metrics.sentiment import sentiment_of
    from mpsynth.testing import build_tiny_sentiment_model

    texts = [r["text"] for r in demo_rows[:200]]
    # labels in an unusual order and spelling: the mapping goes by name, not position
    model = build_tiny_sentiment_model(
        tmp_path / "clf", texts, labels=("Positive", "NEGATIVE", "neutral")
    )
    config = TransformersSentimentConfig(model=str(model), device="cpu")
    classes = sentiment_of(texts, config)
    assert classes.shape == (200,) and set(classes.tolist()) <= {0, 1, 2}
    np.testing.assert_array_equal(classes, sentiment_of(texts, config))
    assert sentiment_of(["I love it"], VaderSentimentConfig()).tolist() == [2]


def test_sentiment_labels_map_by_name():
    from mpsynth.metrics.sentiment import _label_index

    assert [_label_index(x) for x in ("NEGATIVE", "neutral", "Positive", "neg")] == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="LABEL_0"):
        _label_index("LABEL_0")  # a model without sentiment label names is refused, not guessed


def test_sentiment_is_routed_by_language_and_coverage_says_who_measured_what(tmp_path, demo_rows):
    """The demo's English posts go to the model given for `en`; posts in other languages (as the
    language identifier reads them) to VADER, which covers English only: those are marked."""
    from mpsynth.config import TransformersSentimentConfig, VaderSentimentConfig
    from mpsynth.metrics.sentiment import detect_languages, routed_sentiment, sentiment_of
    from mpsynth.testing import build_tiny_sentiment_model

    texts = [r["text"] for r in demo_rows[:400]]
    languages = detect_languages(texts)
    assert languages.count("en") > 0.8 * len(texts) and set(languages) - {"en"}
    model = build_tiny_sentiment_model(tmp_path / "clf", texts[:200])
    english = TransformersSentimentConfig(model=str(model), device="cpu", languages=["en"])
    classes, covered = routed_sentiment(texts, languages, VaderSentimentConfig(), {"en": english})
    is_english = np.array([language == "en" for language in languages])
    rows = np.flatnonzero(is_english)
    others = np.flatnonzero(~is_english)
    np.testing.assert_array_equal(classes[rows], sentiment_of([texts[i] for i in rows], english))
    vader = sentiment_of([texts[i] for i in others], VaderSentimentConfig())
    np.testing.assert_array_equal(classes[others], vader)
    # English posts by a model that covers English; the rest by VADER, which does not cover them
    np.testing.assert_array_equal(covered, is_english | np.array([x is None for x in languages]))
    assert not routed_sentiment(["Dit is mooi"], ["nl"], VaderSentimentConfig(), {})[1][0]


def test_the_report_marks_sentiment_measured_outside_its_languages():
    from mpsynth.report.html import _coverage_warning

    def row(dataset, platform, value):
        return {
            "family": "sentiment",
            "metric": "language_coverage",
            "dataset": dataset,
            "platform": platform,
            "value": value,
        }

    rows = [row("real", "telegram", 0.39), row("real", "twitter", 0.97), row("real", "all", 0.6)]
    warning = _coverage_warning(rows)
    assert "real on telegram (39% covered)" in warning and "twitter" not in warning
    assert _coverage_warning([row("real", "twitter", 0.97)]) == ""


def test_the_greedy_group_folds_are_scikit_learns_folds(demo_rows):
    """Real texts, real and copied ones mixed as in a detectability check (a group is one text,
    some in both classes): the faster fold choice gives scikit-learn's folds exactly."""
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(0)
    texts = [row["text"] for row in demo_rows]
    for n, folds, seed in [(40, 5, 0), (300, 5, 7), (500, 3, 11), (120, 6, 2)]:
        real = [texts[i] for i in rng.choice(len(texts), n, replace=False)]
        synthetic = [texts[i] for i in rng.choice(len(texts), n // 3, replace=False)]
        synthetic += [real[i] for i in rng.choice(n, n - n // 3)]  # copies, some repeated
        labels = np.array([0] * n + [1] * n)
        groups = np.unique(real + synthetic, return_inverse=True)[1]
        ours, theirs = (
            [
                list(test)
                for _, test in kind(folds, shuffle=True, random_state=seed).split(
                    labels, labels, groups
                )
            ]
            for kind in (GreedyStratifiedGroupKFold, StratifiedGroupKFold)
        )
        assert ours == theirs


def test_the_ks_statistic_is_scipys():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for _ in range(200):
        first = rng.integers(0, 30, rng.integers(1, 80)).astype(float)
        second = rng.normal(10, 5, rng.integers(1, 80)).round()
        assert ks_statistic(first, second) == ks_2samp(first, second, method="asymp").statistic
    assert np.isnan(ks_statistic(np.array([]), np.array([1.0])))


def test_knn_precision_and_recall_are_prdcs_and_read_as_expected():
    """Per-post indicators whose means are what prdc.compute_prdc reports; a set drawn from the
    real distribution scores high on both, one collapsed onto a corner of it high precision and
    low recall."""
    import contextlib
    import io

    from prdc import compute_prdc

    from mpsynth.metrics.similarity import knn_precision_recall

    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2)).astype(np.float32)  # two dimensions: radii stay small
    same = rng.normal(size=(400, 2)).astype(np.float32)
    corner = real[real[:, 0] > 1.0][:40]  # the real posts of one corner, nearly copied
    collapsed = (corner + rng.normal(scale=0.01, size=corner.shape)).astype(np.float32)
    for fake in (same, collapsed):
        precision, recall = knn_precision_recall(real, fake)
        with contextlib.redirect_stdout(io.StringIO()):
            expected = compute_prdc(real, fake, nearest_k=5)
        assert precision.mean() == pytest.approx(expected["precision"])
        assert recall.mean() == pytest.approx(expected["recall"])
    precision, recall = knn_precision_recall(real, same)
    assert precision.mean() > 0.8 and recall.mean() > 0.8
    precision, recall = knn_precision_recall(real, collapsed)
    assert precision.mean() > 0.9 and recall.mean() < 0.5


def test_a_set_too_small_for_a_radius_gets_no_knn_rows():
    from mpsynth.metrics.compare import EvalSet, _knn_rows

    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 4))
    real = EvalSet("real", ["x"] * 50, np.array(["a"] * 50, dtype=object), vectors, np.zeros(50))
    few = rng.normal(size=(6, 4))  # k = 5: six posts, no radius
    boot = (20, 0.95, rng)
    assert _knn_rows(real, few, "set", "all", boot) == []
    rows = _knn_rows(real, rng.normal(size=(7, 4)), "set", "all", boot)
    assert [r["metric"] for r in rows] == ["knn_precision", "knn_recall"]
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in rows)


def _diversity_module(name: str):
    """One of the `diversity` package's own modules (make install adds the package without its
    dependencies), loaded from its file: the package's __init__ imports models and APIs."""
    import importlib.util
    from pathlib import Path

    found = importlib.util.find_spec("diversity")
    assert found is not None, "the diversity package is missing: run make install"
    path = Path(found.submodule_search_locations[0]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"diversity_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_distinct_n_and_compression_ratio_equal_the_diversity_packages(demo_rows):
    from mpsynth.metrics.linguistic import compression_ratio

    compression, ngrams = _diversity_module("compression"), _diversity_module("ngram_diversity")
    real = [r["text"] for r in demo_rows[:800]]
    repeated = [r["text"] for r in demo_rows[:40]] * 20  # a homogeneous set of the same size
    for texts in (real, repeated):
        assert compression_ratio(texts) == compression.compression_ratio(texts)
        running = 0.0
        for n in (1, 2, 3):  # the package sums distinct-1 .. distinct-n, rounded to 3 places
            running += distinct_n(texts, n)
            assert round(running, 3) == pytest.approx(ngrams.ngram_diversity_score(texts, n))
    assert compression_ratio(repeated) > 3 * compression_ratio(real)
    assert distinct_n(repeated, 3) < distinct_n(real, 3) / 10


def test_mauve_is_near_one_for_two_samples_of_one_distribution_and_low_for_another():
    from mpsynth.metrics.compare import EvalSet, _mauve_rows

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (12, 16))

    def sample(n, shift=0.0):
        points = centres[rng.integers(0, 12, n)] + rng.normal(0, 0.15, (n, 16)) + shift
        return points / np.linalg.norm(points, axis=1, keepdims=True)

    real = EvalSet("real", [""] * 1500, np.array(["x"] * 1500), sample(1500), np.zeros(1500))
    (same,) = _mauve_rows(real, sample(600), "holdout", "all", seed=1)
    (other,) = _mauve_rows(real, sample(600, shift=1.0), "set", "all", seed=1)
    assert same["metric"] == "mauve" and same["value"] >= 0.9
    assert other["value"] <= 0.3
    assert _mauve_rows(real, sample(400), "tiny", "all", seed=1) == []  # too few to bucket


def test_burstiness_is_minus_one_for_clockwork_and_near_zero_for_random_posting():
    from mpsynth.metrics.structure import Posts, account_burstiness

    rng = np.random.default_rng(0)
    regular = np.arange(0, 50) * 3600.0
    random_times = np.cumsum(rng.exponential(3600.0, 2000))
    seconds = np.concatenate([regular, random_times])
    author = np.array(["clock"] * 50 + ["poisson"] * 2000, dtype=object)
    posts = Posts(
        np.array(["twitter"] * len(author), dtype=object), author, seconds, np.zeros(len(author))
    )
    clock, poisson = account_burstiness(posts)
    assert clock == pytest.approx(-1.0)
    assert abs(poisson) < 0.05


def test_style_heterogeneity_is_near_zero_for_alike_accounts_and_high_for_distinct_ones():
    from mpsynth.metrics.structure import STYLE, account_style_heterogeneity

    rng = np.random.default_rng(0)
    author = np.repeat([f"a{i}" for i in range(30)], 10).astype(object)
    alike = {name: rng.poisson(3, 300).astype(float) for name in STYLE}
    own = rng.poisson(3, 30).astype(float)  # each account keeps to its own style
    distinct = {name: np.repeat(own, 10) + rng.normal(0, 0.1, 300) for name in STYLE}
    low, accounts, _ = account_style_heterogeneity(author, alike, 50, 0.95, rng)
    high, _, (ci_low, ci_high) = account_style_heterogeneity(author, distinct, 50, 0.95, rng)
    assert accounts == 30
    assert low < 0.45 < 0.9 < high  # alike: only sampling noise between account means
    assert ci_low <= high <= ci_high


def test_interaction_shares_engagement_tails_and_the_followers_relation():
    """Kind shares are counted among posts with a kind; a set whose likes follow its authors'
    followers has a rank correlation near 1, one whose likes are shuffled near 0; a heavy tail
    shows in the Gini and the top-1% share; the KS statistic is 0 against the same values."""
    from mpsynth.core import schema
    from mpsynth.metrics.interactions import interaction_metrics, top_share
    from mpsynth.metrics.structure import Posts

    rng = np.random.default_rng(0)
    n = 2_000
    author = np.array([f"a{i % 200}" for i in range(n)], dtype=object)
    followers = np.array([float(10 * (i % 200) + 1) for i in range(n)])
    likes = followers * rng.uniform(0.5, 1.5, n)  # engagement grows with followers
    kind = np.array(["repost" if i % 4 == 0 else "original" for i in range(n)], dtype=object)
    kind[:100] = None  # no kind: out of the shares

    def posts(counts, kinds):
        return Posts(
            np.full(n, "twitter", dtype=object),
            author,
            np.zeros(n),
            np.zeros(n),
            kind=kinds,
            counts=counts,
        )

    shuffled = {"likes": rng.permutation(likes), "followers": followers}
    sets = {
        schema.REAL: posts({"likes": likes, "followers": followers}, kind),
        "shuffled": posts(shuffled, np.full(n, "original", dtype=object)),
    }
    rows = {
        (r["dataset"], r["metric"]): r
        for r in interaction_metrics(sets, samples=50, confidence=0.95, seed=0)
        if r["platform"] == schema.ALL_PLATFORMS
    }
    assert rows[(schema.REAL, "share_repost")]["value"] == pytest.approx(475 / 1900)
    assert rows[("shuffled", "share_repost")]["value"] == 0
    assert rows[(schema.REAL, "likes_followers_rho")]["value"] > 0.8
    assert abs(rows[("shuffled", "likes_followers_rho")]["value"]) < 0.1
    assert rows[("shuffled", "likes_ks")]["value"] == 0  # the same values, reordered
    real_rho = rows[(schema.REAL, "likes_followers_rho")]
    assert real_rho["ci_low"] <= real_rho["value"] <= real_rho["ci_high"]
    # followers are per account: 200 accounts, not 2,000 posts
    assert rows[(schema.REAL, "followers_gini")]["n"] == 200
    assert top_share(np.r_[np.ones(99), 891.0]) == pytest.approx(0.9)
    assert top_share(np.ones(100)) == pytest.approx(0.01)
