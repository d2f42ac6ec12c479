"""Hashtags, mentions, URLs and cashtags against twitter-text's extraction conformance suite
(tests/data/twitter-text, Apache-2.0), on the vectorised path (counts of a whole batch) and the
value path (each post's entities), plus the platform handle rules the suite does not cover."""

from __future__ import annotations

import pytest
import yaml

from mpsynth.metrics.extraction import entities, extract
from tests.conftest import TEST_DATA

SUITE = yaml.safe_load((TEST_DATA / "twitter-text" / "extract.yml").read_text(encoding="utf-8"))[
    "tests"
]
SECTIONS = {
    "hashtags": "hashtags",
    "hashtags_from_astral": "hashtags",
    "mentions": "mentions",
    "urls": "urls",
    "cashtags": "cashtags",
}
CASES = [
    pytest.param(kind, case, id=f"{section}-{number}")
    for section, kind in SECTIONS.items()
    for number, case in enumerate(SUITE[section])
]


@pytest.mark.parametrize(("kind", "case"), CASES)
def test_values_follow_the_conformance_suite(kind, case):
    assert entities(case["text"])[kind] == case["expected"], case["description"]


@pytest.mark.parametrize("section", list(SECTIONS))
def test_counts_of_a_whole_section_in_one_batch(section):
    """Every case of a section in one batch: the vectorised counts equal the expected lengths, so
    no entity leaks across the joins between posts."""
    kind = SECTIONS[section]
    cases = SUITE[section]
    counts = extract([c["text"] for c in cases]).counts[kind]
    wrong = [
        (c["description"], int(n), len(c["expected"]))
        for c, n in zip(cases, counts, strict=True)
        if n != len(c["expected"])
    ]
    assert not wrong


def test_youtube_handles_take_any_script_dots_and_hyphens():
    text = "great cover @MusicFan-2024 and @josé.garcía, thanks @ab and mail me at a@b.com"
    assert entities(text, "youtube")["mentions"] == ["MusicFan-2024", "josé.garcía"]
    # the same text under Twitter's rule: ASCII names up to the first other character
    assert entities(text, "twitter")["mentions"] == ["MusicFan", "ab"]


def test_instagram_handles_take_dots_but_never_end_with_one():
    text = "shot by @nat.geo.travel. Also @under_score and @a..b"
    assert entities(text, "instagram")["mentions"] == ["nat.geo.travel", "under_score", "a..b"]
    assert entities("email: me@site.com", "instagram")["mentions"] == []


def test_each_post_gets_its_platforms_rule_in_one_batch():
    texts = ["hi @josé.garcía", "hi @josé.garcía", "hi @nat.geo", "hi @nat.geo"]
    counted = extract(texts, ["youtube", "twitter", "instagram", "reddit"], values=True)
    assert counted.values["mentions"] == [["josé.garcía"], [], ["nat.geo"], ["nat"]]
    assert counted.counts["mentions"].tolist() == [1, 0, 1, 1]


def test_entities_inside_a_url_do_not_count():
    found = entities("see https://example.com/#anchor and https://example.com/@user/ #real @real")
    assert found["urls"] == ["https://example.com/#anchor", "https://example.com/@user/"]
    assert found["hashtags"] == ["real"] and found["mentions"] == ["real"]


def test_a_batch_counts_like_posts_one_at_a_time(demo_rows):
    from collections import Counter

    texts = [r["text"] for r in demo_rows]
    platforms = [r["platform"] for r in demo_rows]
    batch = extract(texts, platforms, values=True)
    for i in range(0, len(texts), 7):
        one = entities(texts[i], platforms[i])
        for kind, values in one.items():
            assert batch.values[kind][i] == values
            assert batch.counts[kind][i] == len(values)
    totals = Counter({k: int(v.sum()) for k, v in batch.counts.items()})
    assert totals["hashtags"] > 100 and totals["urls"] > 100 and totals["mentions"] > 100
