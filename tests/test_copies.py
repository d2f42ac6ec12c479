"""The copy filter on a small hand-checked case: each post is dropped for the first reason that
holds, and the counts say how many of each."""

from __future__ import annotations

from mpsynth.config import CopiesConfig
from mpsynth.metrics.privacy import RealCorpusIndex
from mpsynth.stages.postprocess.copies import CopyFilter, copy_reasons, tally

REAL = {
    "r1": "The senate vote on the border bill is set for Thursday, call your representative today",
    "r2": "Watching the debate tonight with friends, the moderators keep interrupting everyone",
    "r3": "Gas prices went up again this week and nobody in Washington seems to care at all",
}
SYNTHETIC = [  # (text, the examples its prompt showed), with the reason a reader would give
    (REAL["r1"], ["r1"]),  # exact copy of a real post (also of its example)
    (
        "The senate vote on the border bill is set for Friday, call your representative today",
        ["r1"],
    ),
    # ^ near copy of its example (one word changed)
    ("Gas prices went up again this week and nobody in Washington seems to care at all!!", ["r1"]),
    # ^ near copy of a real post it was not shown
    (
        "Turnout in the primary was the highest in twenty years according to county officials",
        ["r2"],
    ),
    (
        "Turnout in the primary was the highest in twenty years according to county officials.",
        ["r2"],
    ),
    # ^ near duplicate of the post before it
    ("My landlord raised the rent by a third and says it is the market, what a joke", ["r3"]),
    ("my landlord raised the rent by a third and says it is the market, what a joke", ["r3"]),
    # ^ the same words: a near duplicate (shingles are case-folded)
    ("Nobody in Washington cares about gas prices, they all drive free cars anyway", ["r3"]),
    # ^ same topic as r3, different words: kept
]
EXPECTED = [
    "exact_copy",
    "near_copy_of_examples",
    "near_copy_of_corpus",
    None,
    "near_duplicate",
    None,
    "near_duplicate",
    None,
]


def _reasons(config=None):
    index = RealCorpusIndex(list(REAL), list(REAL.values()))
    texts = [t for t, _ in SYNTHETIC]
    return copy_reasons(index, texts, [e for _, e in SYNTHETIC], config or CopiesConfig())


def test_each_post_is_dropped_for_the_reason_a_reader_would_give():
    reasons = _reasons()
    assert reasons == EXPECTED
    assert tally(reasons) == {
        "before": 8,
        "exact_copy": 1,
        "near_copy_of_examples": 1,
        "near_copy_of_corpus": 1,
        "near_duplicate": 2,
        "kept": 3,
    }


def test_each_check_can_be_turned_off():
    # without the example check, the near copy of an example is still a near copy of the corpus
    assert _reasons(CopiesConfig(near_copies_of_examples=False))[1] == "near_copy_of_corpus"
    # without the exact check, an exact copy is a near copy (Jaccard 1) of its example
    assert _reasons(CopiesConfig(exact_copies=False))[0] == "near_copy_of_examples"
    off = CopiesConfig(
        exact_copies=False,
        near_copies_of_examples=False,
        near_copies_of_corpus=False,
        near_duplicates=False,
    )
    assert _reasons(off) == [None] * len(SYNTHETIC)


def test_a_filter_kept_across_rounds_judges_as_if_given_the_posts_kept_before():
    """A deficit round's posts are judged against the posts the set kept before, held by the
    set's filter since the first round (not indexed again): as `copy_reasons` with `earlier`."""
    index = RealCorpusIndex(list(REAL), list(REAL.values()))
    texts, examples = [t for t, _ in SYNTHETIC], [e for _, e in SYNTHETIC]
    first, later = slice(0, 5), slice(5, None)
    copies = CopyFilter(index, CopiesConfig())
    first_reasons = copies.reasons(texts[first], examples[first])
    kept_before = [t for t, r in zip(texts[first], first_reasons, strict=True) if r is None]
    round_two = [*texts[later], texts[3] + "?"]  # the last nearly repeats a post kept in round 1
    shown = [*examples[later], ["r2"]]
    reasons = copies.reasons(round_two, shown)
    assert reasons == [None, "near_duplicate", None, "near_duplicate"]
    assert reasons == copy_reasons(index, round_two, shown, CopiesConfig(), earlier=kept_before)
