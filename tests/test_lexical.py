from __future__ import annotations

import emoji
import numpy as np
import pyarrow as pa
import pytest

from mpsynth.metrics.lexical import (
    UNQUALIFIED,
    add_lexical_features,
    emoji_spans,
    emojis_in,
    lexical_features,
    lexical_metric_values,
)
from mpsynth.metrics.stats import bootstrap_mean_ci

# Real posts from the demo data, counted by hand.
HAND_COUNTED = {
    # id: (hashtags, mentions, urls, emojis, words)
    "10_gop#231": (1, 1, 0, 0, 11),
    "4MySquad3312143142#297": (3, 2, 0, 0, 21),
    "4MySquad3312143142#2432": (0, 0, 1, 0, 13),
    "Crystal1Johnson#6226": (0, 0, 1, 3, 13),  # 👑 ❤️ 🎉
    "debesstrs#8413": (0, 0, 1, 3, 17),  # 😠 💸 💯; a bare ↔ is text (UTS #51)
    "AnaaisLEC#2110": (0, 0, 0, 2, 16),  # 👍 🇺🇸 (a flag is one emoji)
}


@pytest.fixture(scope="module")
def hand_rows(demo_rows):
    by_id = {r["id"]: r for r in demo_rows}
    return [by_id[i] for i in HAND_COUNTED]


def test_counts_match_hand_counts_on_real_posts(hand_rows):
    features = lexical_features(pa.array([r["text"] for r in hand_rows]))
    for index, row in enumerate(hand_rows):
        hashtags, mentions, urls, emojis, words = HAND_COUNTED[row["id"]]
        got = tuple(
            int(features[name][index])
            for name in ("hashtags", "mentions", "urls", "emojis", "words")
        )
        assert got == (hashtags, mentions, urls, emojis, words), row["id"]
        assert features["chars"][index] == len(row["text"])


@pytest.mark.parametrize(
    ("text", "hashtags", "mentions"),
    [
        ("mail me at someone@example.com", 0, 0),  # an e-mail address is not a mention
        (
            "it&#39;s #1 but #2020vote counts",
            1,
            0,
        ),  # an HTML entity and a bare number are not hashtags
        ("#a #b\n#c", 3, 0),
        ("(@user) and @user2", 0, 2),
    ],
)
def test_patterns_do_not_fire_inside_words(text, hashtags, mentions):
    features = lexical_features(pa.array([text]))
    assert (features["hashtags"][0], features["mentions"][0]) == (hashtags, mentions)


def whole_text_emoji_spans(text):
    """The rule applied by the emoji library's tokenizer to the whole post, character by character."""
    found = []
    for token in emoji.analyze(text, join_emoji=True):
        match = token.value
        if len(match.emoji) == 1 and (match.data or {}).get("status") == UNQUALIFIED:
            continue
        found.append((match.start, match.end, match.emoji))
    return found


def test_emoji_spans_and_vectorised_counts_equal_the_whole_text_rule_on_every_demo_post(
    demo_rows,
):
    texts = [r["text"] for r in demo_rows]
    expected = [whole_text_emoji_spans(t) for t in texts]
    assert sum(map(len, expected)) > 100  # the check means something only if emojis are there
    assert [emoji_spans(t) for t in texts] == expected  # runs only: same emojis, same offsets
    features = lexical_features(pa.chunked_array([pa.array(texts[:2000]), pa.array(texts[2000:])]))
    np.testing.assert_array_equal(features["emojis"], [len(found) for found in expected])
    # the library counts text-default symbols too: the rule differs from it on real posts
    assert sum(emoji.emoji_count(t) for t in texts) > sum(map(len, expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("© 2020 ® ™ ↔ ❤", []),  # text-default symbols written as text
        ("©\ufe0f ❤\ufe0f ↔\ufe0f", ["©\ufe0f", "❤\ufe0f", "↔\ufe0f"]),  # with VS16: emoji
        ("family 👩\u200d👩\u200d👧 here", ["👩\u200d👩\u200d👧"]),  # a ZWJ sequence is one
        ("press 1\ufe0f\u20e3 or #\ufe0f\u20e3", ["1\ufe0f\u20e3", "#\ufe0f\u20e3"]),  # keycaps
        ("🇺🇸🇬🇧 👍🏽", ["🇺🇸", "🇬🇧", "👍🏽"]),  # flags, a skin tone joins its emoji
        ("😀😀", ["😀", "😀"]),
    ],
)
def test_emojis_follow_unicode_rules(text, expected):
    assert emojis_in(text) == expected
    assert lexical_features(pa.array([text]))["emojis"][0] == len(expected)


def test_batch_function_adds_one_column_per_feature(hand_rows):
    batch = pa.table(
        {"platform": [r["platform"] for r in hand_rows], "text": [r["text"] for r in hand_rows]}
    )
    out = add_lexical_features(batch)
    assert out.column_names == [
        "platform",
        "text",
        "hashtags",
        "mentions",
        "urls",
        "emojis",
        "cashtags",
        "chars",
        "words",
    ]
    assert out["hashtags"].to_pylist() == [h for h, *_ in HAND_COUNTED.values()]


def test_metric_values_are_shares_and_means():
    values = lexical_metric_values(
        {
            "hashtags": np.array([0, 2, 1, 0]),
            "mentions": np.zeros(4, int),
            "urls": np.array([1, 1, 1, 1]),
            "emojis": np.array([0, 0, 0, 3]),
            "chars": np.array([10, 20, 30, 40]),
            "words": np.array([1, 2, 3, 4]),
        }
    )
    assert values["share_with_hashtags"].mean() == 0.5
    assert values["mean_hashtags"].mean() == 0.75
    assert values["share_with_urls"].mean() == 1.0
    assert values["mean_chars"].mean() == 25.0


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = rng.binomial(1, 0.3, 100).astype(float)
    large = rng.binomial(1, 0.3, 10_000).astype(float)
    low_s, high_s = bootstrap_mean_ci(small, 500, 0.95, np.random.default_rng(1))
    low_l, high_l = bootstrap_mean_ci(large, 500, 0.95, np.random.default_rng(1))
    assert low_s < small.mean() < high_s and low_l < large.mean() < high_l
    assert (high_l - low_l) < (high_s - low_s) / 5
    assert np.isnan(bootstrap_mean_ci(small, 0, 0.95, rng)).all()


def test_large_samples_get_the_normal_interval_the_bootstrap_would_give():
    values = np.random.default_rng(2).binomial(1, 0.3, 10_000).astype(float)
    resampled = bootstrap_mean_ci(values, 2000, 0.95, np.random.default_rng(3))
    normal = bootstrap_mean_ci(
        np.concatenate([values, values[:1]]), 2000, 0.95, np.random.default_rng(3)
    )
    np.testing.assert_allclose(normal, resampled, atol=0.002)


def test_word_counts_match_python_split_on_every_demo_post(demo_rows):
    texts = [r["text"] for r in demo_rows] + ["", "  ", " padded  words "]
    features = lexical_features(pa.array(texts))
    assert features["words"].tolist() == [len(t.split()) for t in texts]


def test_bootstrap_of_a_two_sample_statistic():
    from mpsynth.metrics.sentiment import class_shares
    from mpsynth.metrics.stats import bootstrap_statistic_ci, js_divergence

    def divergence(a, b):
        return js_divergence(class_shares(a), class_shares(b))

    rng = np.random.default_rng(0)
    same = rng.integers(0, 3, 2000)
    shifted = np.where(rng.random(2000) < 0.5, 2, rng.integers(0, 3, 2000))  # far more positive
    low, high = bootstrap_statistic_ci(same, same.copy(), divergence, 200, 0.95, rng)
    assert 0.0 <= low <= high < 0.01
    low, high = bootstrap_statistic_ci(same, shifted, divergence, 200, 0.95, rng)
    assert low > 0.02 and low <= divergence(same, shifted) <= high
