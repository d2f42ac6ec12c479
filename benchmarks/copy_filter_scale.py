"""The copy filter at scale: synthetic posts against a real corpus resampled from the shared files.

The synthetic posts are written as the local fake server writes them (each a draw of words from its
request's nine real examples, as long as one of them), with 3% exact copies of an example and 3%
near copies (one word changed), thirty posts a request. Printed for the filter as it is, and as it
was (each kept post's shingle set held, a MinHash with fresh permutations per post, the examples'
shingles made again for every post): seconds, the growth of this process's resident memory during
the filter, and the posts dropped for each reason (which must agree).

    .venv/bin/python benchmarks/copy_filter_scale.py --real 100000 --synthetic 100000
    .venv/bin/python benchmarks/copy_filter_scale.py --real 1000000 --synthetic 1000000 --no-before
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from mpsynth.config import CopiesConfig
from mpsynth.metrics.privacy import NEAR_COPY, NUM_PERM, RealCorpusIndex, jaccard, shingles
from mpsynth.stages.postprocess.copies import copy_reasons, tally
from mpsynth.testing.corpus import real_posts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = ("politics_twitter_ira.csv", "politics_reddit_meiu22.csv", "youtube_spam.csv")
BUNDLED = [Path(__file__).resolve().parents[1] / "data" / "demo" / "posts.csv"]


def synthetic_posts(ids, texts, n: int, rng) -> tuple[list[str], list[list[str]]]:
    out, shown = [], []
    while len(out) < n:
        picked = rng.integers(0, len(ids), 9)
        examples = [texts[i] for i in picked]
        words = " ".join(examples).split() or ["post"]
        for _ in range(min(30, n - len(out))):
            draw = rng.random()
            example = examples[int(rng.integers(0, 9))]
            if draw < 0.03:
                text = example
            elif draw < 0.06:
                parts = example.split() or ["post"]
                parts[int(rng.integers(0, len(parts)))] = "changed"
                text = " ".join(parts)
            else:
                count = max(1, len(example.split()))
                text = " ".join(rng.choice(words, count))
            out.append(text)
            shown.append([ids[i] for i in picked])
    return out, shown


def as_it_was(index: RealCorpusIndex, texts, example_ids) -> list[str | None]:
    """The filter before this benchmark: kept posts' shingles held, fresh permutations per post."""
    from datasketch import MinHash, MinHashLSH

    def signature_of(grams):
        signature = MinHash(num_perm=NUM_PERM, seed=1)
        signature.update_batch([g.encode("utf-8") for g in grams])
        return signature

    kept, kept_shingles, reasons = MinHashLSH(threshold=NEAR_COPY, num_perm=NUM_PERM), {}, []
    for position, (text, examples) in enumerate(zip(texts, example_ids, strict=True)):
        grams = shingles(text)
        signature = signature_of(grams)
        reason = None
        if text in index.exact:
            reason = "exact_copy"
        elif any(jaccard(grams, g) >= NEAR_COPY for g in index.shingles_of(examples)):
            reason = "near_copy_of_examples"
        elif index.near_copy_of_corpus(text):
            reason = "near_copy_of_corpus"
        elif any(jaccard(grams, kept_shingles[int(o)]) >= NEAR_COPY for o in kept.query(signature)):
            reason = "near_duplicate"
        if reason is None:
            kept.insert(str(position), signature)
            kept_shingles[position] = grams
        reasons.append(reason)
    return reasons


def measured(call):
    """(result, seconds, peak growth of resident memory in bytes), sampled ten times a second."""
    process, peak, stop = psutil.Process(), [0], threading.Event()
    base = process.memory_info().rss

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], process.memory_info().rss - base)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    return result, seconds, max(peak[0], process.memory_info().rss - base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=100_000)
    parser.add_argument("--synthetic", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--no-before", action="store_true", help="measure the filter as it is only")
    args = parser.parse_args()
    paths = [args.data / name for name in FILES]
    if not all(p.is_file() for p in paths):
        print(f"{args.data} lacks the public files: resampling the bundled demo posts instead")
        paths = BUNDLED
    real = real_posts(paths)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, real.num_rows, args.real)
    texts = real.column("text").take(rows).to_pylist()
    ids = [f"{i}~{k}" for k, i in enumerate(real.column("id").take(rows).to_pylist())]
    synthetic, shown = synthetic_posts(ids, texts, args.synthetic, rng)
    index, index_s, _ = measured(lambda: RealCorpusIndex(ids, texts))
    print(
        f"{args.real:,} real posts indexed in {index_s:.1f} s; {args.synthetic:,} synthetic posts"
    )
    config = CopiesConfig()
    runs = [("as it is", lambda: copy_reasons(index, synthetic, shown, config))]
    if not args.no_before:
        runs.append(("as it was", lambda: as_it_was(index, synthetic, shown)))
    results = {}
    for name, call in runs:
        reasons, seconds, grown = measured(call)
        results[name] = (reasons, seconds, grown)
        counts = tally(reasons)
        print(f"{name:>10}: {seconds:7.1f} s ({args.synthetic / seconds:,.0f} posts/s), memory "
              f"+{grown / 2**20:,.0f} MiB; " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))  # fmt: skip
    if len(results) == 2:
        (now, now_s, now_m), (was, was_s, was_m) = results["as it is"], results["as it was"]
        agree = sum(a == b for a, b in zip(now, was, strict=True)) / len(now)
        print(f"as it was / as it is: {was_s / now_s:.2f}x the time, "
              f"{was_m / max(now_m, 1):.1f}x the memory; the same reason for {agree:.2%} of posts")  # fmt: skip


if __name__ == "__main__":
    main()
