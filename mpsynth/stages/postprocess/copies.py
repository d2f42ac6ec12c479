"""The copy filter: synthetic posts that copy a real post, nearly copy the examples their prompt
showed or any real post, or nearly repeat another synthetic post of the same set, are dropped after
generation, by the evaluation's own measures (mpsynth.metrics.privacy: exact text; character
5-shingle Jaccard >= 0.8, candidates by MinHash LSH). Each post is dropped for the first of these
that holds, in that order, and counted under it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from mpsynth.config import CopiesConfig
from mpsynth.metrics.privacy import NEAR_COPY, NUM_PERM, RealCorpusIndex, jaccard, shingles

REASONS = {
    "exact_copy": "copy filter: exact copy of a real post",
    "near_copy_of_examples": "copy filter: near copy of an example its prompt showed",
    "near_copy_of_corpus": "copy filter: near copy of a real post",
    "near_duplicate": "copy filter: near duplicate of an earlier synthetic post",
}


class CopyFilter:
    """The copy filter over one synthetic set. The posts it keeps stay indexed, so a later round's
    posts are judged against them without indexing them again.

    Each post's shingles and signature are made once and serve every check; the examples' shingles
    once per request (its posts come together); the kept posts' shingles are made again for the
    few candidates a query returns, not held (some 20 KB a post: 20 GB at a million)."""

    PROGRESS_EVERY = 10_000

    def __init__(self, index: RealCorpusIndex, config: CopiesConfig) -> None:
        from datasketch import MinHashLSH

        self.index = index
        self.config = config
        self.kept = MinHashLSH(threshold=NEAR_COPY, num_perm=NUM_PERM)
        self.kept_texts: dict[int, str] = {}

    def keep(self, texts: Iterable[str]) -> None:
        """Posts of the set kept before (by an earlier round): later posts must not repeat them."""
        if self.config.near_duplicates:
            for text in texts:
                self._keep(text, self.index.signature(shingles(text)))

    def _keep(self, text: str, signature) -> None:
        key = len(self.kept_texts)
        self.kept.insert(str(key), signature)
        self.kept_texts[key] = text

    def reasons(
        self,
        texts: list[str],
        example_ids: list[list[str]],
        progress: Callable[[int], None] | None = None,
    ) -> list[str | None]:
        """Per post (in order): why it is dropped (a key of REASONS), or None to keep it. A near
        duplicate is judged against the posts kept before it, so one of each group stays.
        `progress(n)` is told every PROGRESS_EVERY posts."""
        index, config = self.index, self.config
        shown: tuple[str, ...] | None = None
        shown_grams: list[set[str]] = []
        reasons: list[str | None] = []
        for done, (text, examples) in enumerate(zip(texts, example_ids, strict=True), 1):
            grams = shingles(text)
            signature = index.signature(grams)
            if config.near_copies_of_examples and tuple(examples) != shown:
                shown = tuple(examples)
                shown_grams = index.shingles_of(examples)
            reason = None
            if config.exact_copies and text in index.exact:
                reason = "exact_copy"
            elif config.near_copies_of_examples and any(
                jaccard(grams, other) >= NEAR_COPY for other in shown_grams
            ):
                reason = "near_copy_of_examples"
            elif config.near_copies_of_corpus and index.nearly_copies_corpus(grams, signature):
                reason = "near_copy_of_corpus"
            elif config.near_duplicates and any(
                jaccard(grams, shingles(self.kept_texts[int(other)])) >= NEAR_COPY
                for other in self.kept.query(signature)
            ):
                reason = "near_duplicate"
            if reason is None and config.near_duplicates:
                self._keep(text, signature)
            reasons.append(reason)
            if progress is not None and done % self.PROGRESS_EVERY == 0:
                progress(done)
        return reasons


def copy_reasons(
    index: RealCorpusIndex,
    texts: list[str],
    example_ids: list[list[str]],
    config: CopiesConfig,
    earlier: list[str] = (),
) -> list[str | None]:
    """Per synthetic post (in order): why it is dropped (a key of REASONS), or None to keep it;
    `earlier`: posts of the same set kept in a previous round."""
    copies = CopyFilter(index, config)
    copies.keep(earlier)
    return copies.reasons(texts, example_ids)


def tally(reasons: list[str | None]) -> dict[str, int]:
    counts = Counter(r for r in reasons if r is not None)
    return {
        "before": len(reasons),
        **{reason: counts.get(reason, 0) for reason in REASONS},
        "kept": sum(r is None for r in reasons),
    }
