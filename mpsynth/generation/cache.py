"""The completion cache: every answer a provider gave, kept across runs so that no request is paid
for twice.

An answer is filed by its request id, the hash of everything that shapes it (provider kind, model,
base URL, every sampling parameter, the messages, the request's seed; a replicate draws its own
seeds, so its requests are new). What is kept is the raw answer (the ledger row: the model's text,
tokens, finish reason), never a parsed post: parsing happens after the ledger, so a changed parser
reads the cached text again. Only successful answers are kept.

The cache lives beside the embedding cache (`cache/completions/`, under the run directory, a
sweep's shared folder, or $MPSYNTH_CACHE): Parquet parts, one per run that added answers (so runs
that share it never write the same file), the oldest dropped when the folder outgrows its cap.
A request answered from the cache enters the run's ledger as a row of its own generator with
`attempts` 0 and `cost_usd` 0: no call was made and nothing was paid. The Markov stand-in is never
cached: its answers depend on the real corpus it reads, which no request id holds.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema

log = logging.getLogger(__name__)

FOLDER = "completions"
UNCACHED_PROVIDERS = frozenset({"markov"})


class CompletionCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.folder = Path(root) / FOLDER
        self.max_bytes = max_bytes

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def lookup(self, request_ids: Iterable[str]) -> dict[str, dict]:
        """request id -> its cached answer (a ledger row), for the ids the cache holds."""
        wanted = pa.array(sorted(set(request_ids)), pa.string())
        found: dict[str, dict] = {}
        if not len(wanted):
            return found
        for part in self.parts():
            try:
                table = pq.read_table(part, schema=schema.COMPLETIONS)
            except (OSError, pa.ArrowException) as error:
                log.warning(
                    "completion cache part %s is unreadable and is skipped: %s", part, error
                )
                continue
            hits = table.filter(pc.is_in(table.column("request_id"), wanted))
            for row in hits.to_pylist():
                found.setdefault(row["request_id"], row)
        return found

    def add(self, rows: list[dict]) -> int:
        """File successful answers (the ledger rows of requests just answered); the number filed."""
        rows = [r for r in rows if r["status"] == "ok"]
        if not rows:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"part-{uuid.uuid4().hex}.parquet"
        scratch = final.with_name(f".{final.name}.tmp")
        pq.write_table(
            schema.described(pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)), scratch
        )
        os.replace(scratch, final)
        self._trim()
        return len(rows)

    def _trim(self) -> None:
        """Drop the oldest parts while the folder is over its cap."""
        parts = sorted(self.parts(), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in parts)
        while parts and total > self.max_bytes:
            oldest = parts.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
            log.info("completion cache: over its cap, dropped %s", oldest.name)

    def stats(self) -> dict[str, int]:
        parts = self.parts()
        rows = sum(pq.read_metadata(p).num_rows for p in parts)
        return {"parts": len(parts), "answers": rows, "bytes": sum(p.stat().st_size for p in parts)}
