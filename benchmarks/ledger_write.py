"""What the write-ahead log costs a worker: ledger rows/s with each answer logged (JSON line,
flushed to the operating system) against the rows buffered alone, in one run. A worker writes one
row per answered request, so the figure to compare is the time per row against a provider's
latency (hundreds of milliseconds).

    .venv/bin/python benchmarks/ledger_write.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mpsynth.generation.ledger import LedgerWriter, read_ledger


class BufferedOnly(LedgerWriter):
    """The writer before the write-ahead log: rows held in memory until a flush."""

    def add(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.flush_every:
            self.flush()


def _row(i: int) -> dict:
    text = '{"posts": [{"platform": "twitter", "text": "' + "word " * 40 + '"}]}'
    return {
        "request_id": f"req-{i:08d}",
        "generator": "g",
        "provider": "openai",
        "model": "m",
        "status": "ok",
        "text": text,
        "finish_reason": "stop",
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "error": None,
        "latency_s": 0.8,
        "attempts": 1,
        "repaired": False,
        "cost_usd": 0.0004,
        "finished_at": time.time(),
    }


def measure(writer_class: type[LedgerWriter], rows: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        writer = writer_class(Path(folder), flush_every=32, flush_interval_s=3600)
        started = time.perf_counter()
        for i in range(rows):
            writer.add(_row(i))
        writer.flush()
        seconds = time.perf_counter() - started
        assert read_ledger(Path(folder)).num_rows == rows
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    buffered = measure(BufferedOnly, args.rows)
    logged = measure(LedgerWriter, args.rows)
    print(f"{'writer':<22} {'rows/s':>10} {'us/row':>8}")
    print(f"{'buffered only':<22} {buffered:>10,.0f} {1e6 / buffered:>8.1f}")
    print(f"{'write-ahead log':<22} {logged:>10,.0f} {1e6 / logged:>8.1f}")
    print(f"ratio (log / buffered): {logged / buffered:.2f}")
    extra = 1 / logged - 1 / buffered
    print(f"extra per answer: {extra * 1e6:.1f} us = {extra / 0.2:.4%} of a 0.2 s request")


if __name__ == "__main__":
    main()
