from __future__ import annotations

import pytest

from mpsynth.metrics.privacy import RealCorpusIndex, identifiers, jaccard, privacy_metrics, shingles
from tests.conftest import first_per_platform


@pytest.fixture(scope="module")
def corpus(demo_rows):
    rows = first_per_platform(demo_rows, 100)
    return rows, RealCorpusIndex(
        [r["id"] for r in rows], [r["text"] for r in rows], [r["author"] for r in rows]
    )


def test_identifiers_by_hand():
    found = identifiers(
        ["mail me: Jo.Doe@example.org or call +1 555-123-4567, see https://t.co/abc @Foo_1 a@b"]
    )
    assert found["emails"] == {"jo.doe@example.org"}
    assert found["phones"] == {"15551234567"}
    assert found["urls"] == {"https://t.co/abc"}
    assert found["handles"] == {"foo_1"}  # the e-mail's domain and 'a@b' are not handles


def test_copies_near_copies_and_replays_of_real_posts(corpus):
    rows, index = corpus
    tweet = rows[
        0
    ]  # '@realDonaldTrump We desperately need #TaxReform. Lets get it done Mr. President!'
    assert tweet["id"] == "10_gop#231"
    edited = tweet["text"].replace("Lets", "Let's")
    assert jaccard(shingles(edited), shingles(tweet["text"])) >= 0.8
    unrelated = "Completely new words about gardening and tomatoes this spring"
    url_post = next(r for r in rows if "http" in r["text"])
    url = identifiers([url_post["text"]])["urls"].pop()
    texts = [tweet["text"], edited, unrelated, f"look at this {url}", "@nobody_here_xyz hello"]
    examples = [[tweet["id"]], [rows[5]["id"]], [tweet["id"]], [], []]
    metrics = privacy_metrics(index, texts, examples)
    assert metrics["exact_copy_share"] == pytest.approx(1 / 5)
    assert metrics["near_copy_of_corpus_share"] == pytest.approx(2 / 5)  # the copy and the edit
    # the edit copies a post its prompt did not show: a corpus near copy, not an example one
    assert metrics["near_copy_of_examples_share"] == pytest.approx(1 / 5)
    assert metrics["replayed_handles_share"] == pytest.approx(2 / 5)  # @realDonaldTrump, twice
    assert metrics["replayed_urls_share"] == pytest.approx(1 / 5)
    assert metrics["replayed_emails_share"] == 0.0 and metrics["replayed_phones_share"] == 0.0


def test_authors_count_as_real_handles(corpus):
    rows, index = corpus
    author = next(r["author"] for r in rows if r["author"])
    assert privacy_metrics(index, [f"@{author} is right"], None)["replayed_handles_share"] == 1.0


def test_the_lsh_index_finds_the_near_copies_a_brute_force_search_finds(demo_rows):
    rows = first_per_platform(demo_rows, 150)
    told = []
    index = RealCorpusIndex(
        [r["id"] for r in rows], [r["text"] for r in rows], progress=told.append
    )
    assert told[-1] == len(rows)
    # real posts with one word dropped: many stay near copies, short ones do not
    queries = []
    for r in rows:
        words = r["text"].split()
        if len(words) > 3:
            queries.append(" ".join(words[:2] + words[3:]))
    grams = [shingles(r["text"]) for r in rows]
    best = [max(jaccard(q, g) for g in grams) for q in map(shingles, queries)]
    found = [index.near_copy_of_corpus(q) for q in queries]
    assert sum(b >= 0.9 for b in best) > 50 and sum(b < 0.8 for b in best) > 50
    assert not any(f and b < 0.8 for f, b in zip(found, best, strict=True))  # confirmed exactly

    def recall(low):
        hits = [f for f, b in zip(found, best, strict=True) if b >= low]
        return sum(hits) / len(hits)

    # LSH tuned to 0.8 misses some posts just above it; closer copies it (almost) always finds
    assert recall(0.8) >= 0.75 and recall(0.9) >= 0.95 and recall(0.95) == 1.0
