"""The copy filter: synthetic posts that copy a real post, nearly copy the examples their prompt
showed or any real post, or nearly repeat another synthetic post of the same set, are dropped after
generation, by the evaluation's own measures (mpsynth.metrics.privacy: exact text; character
5-shingle Jaccard >= 0.8, candidates by MinHash LSH). Each post is dropped for the first of these
that holds, in that order, and counted under it."""

from __future__ import annotations

from collections import Counter

from mpsynth.config import CopiesConfig
from mpsynth.metrics.privacy import NEAR_COPY, NUM_PERM, RealCorpusIndex, jaccard, shingles

REASONS = {
    "exact_copy": "copy filter: exact copy of a real post",
    "near_copy_of_examples": "copy filter: near copy of an example its prompt showed",
    "near_copy_of_corpus": "copy filter: near copy of a real post",
    "near_duplicate": "copy filter: near duplicate of an earlier synthetic post",
}


def copy_reasons(
    index: RealCorpusIndex,
    texts: list[str],
    example_ids: list[list[str]],
    config: CopiesConfig,
    earlier: list[str] = (),
) -> list[str | None]:
    """Per synthetic post (in order): why it is dropped (a key of REASONS), or None to keep it.
    A near duplicate is judged against the posts kept before it (and the `earlier` posts of the
    same set, kept in a previous round), so one of each group stays."""
    from datasketch import MinHash, MinHashLSH

    def signature_of(grams: set[str]) -> MinHash:
        signature = MinHash(num_perm=NUM_PERM, seed=1)
        signature.update_batch([g.encode("utf-8") for g in grams])
        return signature

    kept = MinHashLSH(threshold=NEAR_COPY, num_perm=NUM_PERM)
    kept_shingles: dict[int, set[str]] = {}
    if config.near_duplicates:
        for position, text in enumerate(earlier, start=-len(earlier)):
            kept_shingles[position] = shingles(text)
            kept.insert(str(position), signature_of(kept_shingles[position]))
    reasons: list[str | None] = []
    for position, (text, examples) in enumerate(zip(texts, example_ids, strict=True)):
        grams = shingles(text)
        signature = signature_of(grams)
        reason = None
        if config.exact_copies and text in index.exact:
            reason = "exact_copy"
        elif config.near_copies_of_examples and index.near_copy_of(text, examples):
            reason = "near_copy_of_examples"
        elif config.near_copies_of_corpus and index.near_copy_of_corpus(text):
            reason = "near_copy_of_corpus"
        elif config.near_duplicates and any(
            jaccard(grams, kept_shingles[int(other)]) >= NEAR_COPY
            for other in kept.query(signature)
        ):
            reason = "near_duplicate"
        if reason is None:
            kept.insert(str(position), signature)
            kept_shingles[position] = grams
        reasons.append(reason)
    return reasons


def tally(reasons: list[str | None]) -> dict[str, int]:
    counts = Counter(r for r in reasons if r is not None)
    return {
        "before": len(reasons),
        **{reason: counts.get(reason, 0) for reason in REASONS},
        "kept": sum(r is None for r in reasons),
    }
