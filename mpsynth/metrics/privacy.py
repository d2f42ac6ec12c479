"""Privacy: does the synthetic set copy or replay real people's posts and identifiers?

Exact copies of real posts; near copies (character-shingle Jaccard >= 0.8) of the few-shot examples
each request was shown, and of the whole real corpus (MinHash LSH for candidates, exact Jaccard to
confirm); and real handles, URLs, e-mail addresses and phone numbers replayed. With real posts held
out of generation, the distance-to-closest-record test: is a synthetic post nearer the posts the
generator learnt from than a held-out sample of the same real population (50% of posts: no)?
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable

import numpy as np

SHINGLE = 5
NEAR_COPY = 0.8
NUM_PERM = 128
HANDLE = re.compile(r"(?<![\w.@/])@(\w{1,30})")
URL = re.compile(r"(?i)(?:https?://|www\.)[^\s<>\"']+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PHONE = re.compile(
    r"(?<!\w)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)"
)


def shingles(text: str, size: int = SHINGLE) -> set[str]:
    text = " ".join(text.lower().split())
    return {text[i : i + size] for i in range(max(1, len(text) - size + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def identifiers(texts: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"handles": set(), "urls": set(), "emails": set(), "phones": set()}
    for text in texts:
        found["handles"].update(h.lower() for h in HANDLE.findall(text))
        found["urls"].update(URL.findall(text))
        found["emails"].update(e.lower() for e in EMAIL.findall(text))
        found["phones"].update(re.sub(r"\D", "", p) for p in PHONE.findall(text))
    return found


class RealCorpusIndex:
    """The real posts, indexed once: exact texts, MinHash LSH, identifiers. Shingles are worked out
    again for the few candidates a query returns rather than kept for every post: kept, they would
    take some 20 KB a post (20 GB for a million posts). Shingles are hashed with CRC-32 (C speed;
    datasketch mixes every hash before its permutations), a third of the time SHA-1 takes.
    `progress(n)` is told every PROGRESS_EVERY posts indexed."""

    PROGRESS_EVERY = 10_000

    def __init__(
        self,
        ids: list[str],
        texts: list[str],
        authors: Iterable[str | None] = (),
        progress: Callable[[int], None] | None = None,
    ) -> None:
        from datasketch import MinHash, MinHashLSH

        self._empty = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=zlib.crc32)
        self.exact = set(texts)
        self.text_of = dict(zip(ids, texts, strict=True))
        self.lsh = MinHashLSH(threshold=NEAR_COPY, num_perm=NUM_PERM)
        for done, (post_id, text) in enumerate(self.text_of.items(), 1):
            self.lsh.insert(post_id, self.signature(shingles(text)))
            if progress is not None and done % self.PROGRESS_EVERY == 0:
                progress(done)
        if progress is not None:
            progress(len(self.text_of))
        self.identifiers = identifiers(texts)
        self.identifiers["handles"].update(a.lower() for a in authors if a)

    def signature(self, grams: set[str]):
        """The MinHash of a shingle set, as the index's own (the permutations drawn once)."""
        signature = self._empty.copy()
        signature.update_batch([g.encode("utf-8") for g in grams])
        return signature

    def near_copy_of_corpus(self, text: str) -> bool:
        grams = shingles(text)
        return self.nearly_copies_corpus(grams, self.signature(grams))

    def nearly_copies_corpus(self, grams: set[str], signature) -> bool:
        """Whether a text (its shingles and their signature) nearly copies any real post."""
        return any(
            jaccard(grams, shingles(self.text_of[candidate])) >= NEAR_COPY
            for candidate in self.lsh.query(signature)
        )

    def shingles_of(self, post_ids: list[str]) -> list[set[str]]:
        """The shingle sets of the real posts named (those the index holds)."""
        return [shingles(self.text_of[i]) for i in post_ids if i in self.text_of]


def privacy_flags(
    index: RealCorpusIndex, texts: list[str], example_ids: list[list[str]] | None
) -> dict[str, np.ndarray]:
    """Per synthetic post: does it copy, nearly copy, or replay real identifiers? Each post's
    shingles are made once for both near-copy checks."""
    grams = [shingles(t) for t in texts]
    flags = {
        "exact_copy_share": np.array([t in index.exact for t in texts], dtype=bool),
        "near_copy_of_corpus_share": np.array(
            [index.nearly_copies_corpus(g, index.signature(g)) for g in grams], dtype=bool
        ),
    }
    if example_ids is not None:
        flags["near_copy_of_examples_share"] = np.array(
            [
                any(jaccard(g, other) >= NEAR_COPY for other in index.shingles_of(ids))
                for g, ids in zip(grams, example_ids, strict=True)
            ],
            dtype=bool,
        )
    found = [identifiers([t]) for t in texts]
    for kind in ("handles", "urls", "emails", "phones"):
        real = index.identifiers[kind]
        flags[f"replayed_{kind}_share"] = np.array(
            [bool(f[kind] & real) for f in found], dtype=bool
        )
    return flags


def privacy_metrics(
    index: RealCorpusIndex, texts: list[str], example_ids: list[list[str]] | None
) -> dict[str, float]:
    """Shares of synthetic posts that copy, nearly copy, or replay real identifiers."""
    if not texts:
        return {}
    return {
        metric: float(flags.mean())
        for metric, flags in privacy_flags(index, texts, example_ids).items()
    }


def nearer_reference(
    synthetic: np.ndarray, reference: np.ndarray, holdout: np.ndarray
) -> np.ndarray:
    """Per synthetic post (unit vectors throughout): 1 when its nearest real post by cosine is
    nearer among `reference` than among `holdout`, 0 when farther, 0.5 on a tie. With `reference`
    a sample of the posts the generator saw and `holdout` one of the same size that it never saw,
    a generator that learnt the population, not the posts, puts half its posts on each side; one
    that memorised its examples, far more than half nearer the reference (the DCR share of
    mostlyai-qa and synthcity)."""
    from mpsynth.metrics.similarity import nearest_both_ways

    to_reference, _ = nearest_both_ways(synthetic, reference)
    to_holdout, _ = nearest_both_ways(synthetic, holdout)
    return np.where(to_reference > to_holdout, 1.0, np.where(to_reference < to_holdout, 0.0, 0.5))
