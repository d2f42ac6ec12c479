"""Calibration on real posts: a synthetic set with the known LLM faults (no URLs or mentions, too
many emojis) comes back with each platform's shares at the real ones, every change recorded."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from mpsynth.stages.postprocess.calibrate import KINDS, calibrate, profile, spans
from tests.conftest import read_rows


@pytest.fixture(scope="module")
def real():
    rows = [r for r in read_rows("ira_tweets.csv")[:1200]]
    rows += [r for r in read_rows("trac1_aggression.csv") if r["platform"] == "facebook"][:800]
    return rows


@pytest.fixture(scope="module")
def faulty(real):
    """Another sample of the same platforms with every URL and mention stripped and an emoji added
    to every third post."""
    rows = [r for r in read_rows("ira_tweets.csv")[1200:1800]]
    rows += [r for r in read_rows("trac1_aggression.csv") if r["platform"] == "facebook"][800:1100]
    texts = []
    for i, row in enumerate(rows):
        text = row["text"]
        for kind in ("urls", "mentions"):
            for start, end in sorted(spans(text, row["platform"], kind), reverse=True):
                text = text[:start] + text[end:]
        texts.append(text + (" 😂" if i % 3 == 0 else ""))
    return pa.table(
        {
            "id": [f"s{i}" for i in range(len(rows))],
            "platform": [r["platform"] for r in rows],
            "text": texts,
            "topic": [i % 4 for i in range(len(rows))],
        }
    )


def _share(table, platform, kind):
    rows = [
        t
        for t, p in zip(table["text"].to_pylist(), table["platform"].to_pylist(), strict=True)
        if p == platform
    ]
    return np.mean([bool(spans(t, platform, kind)) for t in rows]), len(rows)


def test_every_platform_share_lands_on_the_real_share(real, faulty):
    profiles = profile([r["text"] for r in real], [r["platform"] for r in real])
    result = calibrate(faulty, profiles, seed=1)
    for platform in ("twitter", "facebook"):
        for kind in KINDS:
            target = profiles[platform].kinds[kind].share
            after, n = _share(result.table, platform, kind)
            assert abs(after - target) <= 1 / n + 1e-9, (platform, kind, after, target)
            assert result.shares[platform][kind]["after"] == pytest.approx(after)
    # the faults were real: twitter had no URLs or mentions, and three times the real emojis
    assert result.shares["twitter"]["urls"]["before"] == 0 < profiles["twitter"].kinds["urls"].share
    assert result.shares["twitter"]["emojis"]["before"] > 0.3


def test_changes_are_recorded_and_shaped_like_the_platforms_real_posts(real, faulty):
    profiles = profile([r["text"] for r in real], [r["platform"] for r in real])
    result = calibrate(faulty, profiles, seed=1)
    changes = result.changes.to_pylist()
    text_of = dict(
        zip(result.table["id"].to_pylist(), result.table["text"].to_pylist(), strict=True)
    )
    before = dict(zip(faulty["id"].to_pylist(), faulty["text"].to_pylist(), strict=True))
    changed = {c["id"] for c in changes}
    twitter_ids = {
        i
        for i, p in zip(faulty["id"].to_pylist(), faulty["platform"].to_pylist(), strict=True)
        if p == "twitter"
    }
    assert changed and all(text_of[i] == before[i] for i in before if i not in changed)
    real_handles = {h.lower() for r in real for h in re.findall(r"@\w+", r["text"])}
    real_tags = {
        t
        for r in real
        for s, e in spans(r["text"], "twitter", "hashtags")
        for t in [r["text"][s:e]]
    }
    for change in changes:
        value, text = change["entity"], text_of[change["id"]]
        if change["action"] == "added":
            assert value in text
            if change["kind"] == "mentions":
                assert (
                    re.fullmatch(r"@user_[0-9a-f]{8}", value) and value.lower() not in real_handles
                )
            if change["kind"] == "hashtags":
                assert value in real_tags
            if change["kind"] == "urls":  # a domain the platform's real posts link to
                platform = "twitter" if change["id"] in twitter_ids else "facebook"
                domain = re.sub(r"^https?://", "", value).split("/")[0]
                assert domain in {d for _, d, _ in profiles[platform].urls}
        else:
            # only emojis were over-represented; a post chosen loses all of them
            assert change["kind"] == "emojis" and value not in text
    # seeded
    again = calibrate(faulty, profiles, seed=1)
    assert again.table.equals(result.table) and again.changes.equals(result.changes)
    assert not calibrate(faulty, profiles, seed=2).table.equals(result.table)
