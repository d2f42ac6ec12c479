"""A content-addressed store of what a model makes of a text (embeddings; the named entities an NER
pipeline finds): every text goes through a model once.

A vector is filed under the embedder's identity (its settings, the sha256 of its weights or of its
fitted state) and the text's 128-bit BLAKE2b digest, so vectors of two different embedders never
meet and a text repeated anywhere (a retweet, a calibrated set's unchanged post, the real posts the
evaluation samples, a re-run, a sweep's next variation) is looked up, not encoded again.

Layout: `ROOT/KIND/IDENTITY/part-*.parquet` (KIND: embeddings, entities), each part a table of
(id = text digest, the model's output for the text). A part is written under a temporary name and
renamed, so a reader never sees half a file and a crashed writer leaves only an ignored `.tmp`;
concurrent runs may both encode a text and both file it, which costs a duplicate row, never a wrong
answer. The store is bounded: after each addition the oldest parts of the kind (across identities)
are deleted until it is under its size limit; many small parts of one identity are compacted into
one. A lookup reads every part's id column and only the parts that hold a wanted key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import EmbedderConfig
from mpsynth.core.fingerprint import file_sha256, fingerprint

log = logging.getLogger(__name__)

COMPACT_AT = 32  # parts of one identity: beyond this many, the small ones are merged into one
COMPACT_PART_BYTES = 64 << 20  # a part this large is left as it is


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def text_keys(texts: list[str]) -> pa.Array:
    """Each text's 128-bit BLAKE2b digest, hex: the key its vector is filed under."""
    return pa.array(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=16).hexdigest() for t in texts], pa.string()
    )


def split_known(
    store: TextCache | None, keys: pa.Array
) -> tuple[np.ndarray, pa.Table | None, np.ndarray]:
    """The texts behind `keys` as a model pass sees them: (the position of each distinct key's first
    occurrence, in corpus order so that the same batches form on every run; the stored rows of
    those the store holds, or None; the positions, among the first, of those it does not)."""
    _, first = np.unique(keys.to_numpy(zero_copy_only=False), return_index=True)
    first = np.sort(first)
    distinct = keys.take(first)
    stored = store.lookup(distinct) if store is not None else None
    if stored is None:
        return first, None, first
    known = pc.is_in(distinct, value_set=stored.column("id")).to_numpy(zero_copy_only=False)
    return first, stored, first[~known]


def embedder_identity(config: EmbedderConfig, state: Path | None) -> str:
    """What makes an embedder's vectors what they are: every setting, and the sha256 of the weights
    a pretrained model loads or of the state a fitted one (LSA) was saved with."""
    payload: dict = {"config": config.model_dump(mode="json")}
    payload["config"].pop(
        "batch_size", None
    )  # how many texts go through at once, not what comes out
    if state is not None:
        payload["state"] = file_sha256(state)
    if config.kind == "sentence-transformers":
        from mpsynth.embedders.sentence_transformers import model_location, weights_sha256

        payload["weights"] = weights_sha256(model_location(config.model))
    return fingerprint(payload)[:32]


def _first_of_each_key(table: pa.Table) -> pa.Table:
    """The table's rows with every id once (its first row), in their order."""
    _, first = np.unique(table.column("id").to_numpy(zero_copy_only=False), return_index=True)
    return table.take(pa.array(np.sort(first)))


class TextCache:
    """One model's outputs of one kind under `root` (see the module's docstring)."""

    def __init__(self, root: Path, kind: str, identity: str, max_bytes: int) -> None:
        self.root = Path(root)
        self.kind = kind
        self.folder = self.root / kind / identity
        self.max_bytes = max_bytes

    def _parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def lookup(self, keys: pa.Array) -> pa.Table | None:
        """The stored rows (id, embedding) of those `keys` the cache holds, each once (None: none).
        Parts are searched by their id column alone; only a part holding some of the keys is read
        whole, and only its matching rows are kept: memory follows what is found, not the store."""
        wanted, found = keys, []
        for part in self._parts():
            if len(wanted) == 0:
                break
            try:
                ids = pq.read_table(part, columns=["id"]).column("id")
                held = pc.is_in(ids, value_set=wanted).to_numpy(zero_copy_only=False)
                if not held.any():
                    continue
                rows = pq.read_table(part).take(pa.array(np.flatnonzero(held)))
            except FileNotFoundError:  # compacted or pruned by another run meanwhile
                continue
            rows = _first_of_each_key(rows)
            found.append(rows)
            wanted = wanted.filter(pc.invert(pc.is_in(wanted, value_set=rows.column("id"))))
        return pa.concat_tables(found) if found else None

    def add(self, table: pa.Table) -> None:
        """File new rows (id = text key, embedding); then keep the store compact and bounded."""
        if table.num_rows == 0:
            return
        self._write(table)
        if len(self._parts()) > COMPACT_AT:
            self._compact()
        self._prune()

    def _write(self, table: pa.Table) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        scratch = self.folder / f".{name}.tmp"
        pq.write_table(table, scratch)
        os.replace(scratch, self.folder / name)
        return self.folder / name

    def _compact(self) -> None:
        """The small parts merged into one (the first row of each key kept)."""
        parts = [p for p in self._parts() if _size(p) < COMPACT_PART_BYTES]
        if len(parts) < 2:
            return
        try:
            stored = pa.concat_tables([pq.read_table(p) for p in parts])
        except FileNotFoundError:  # another run compacted them first
            return
        self._write(_first_of_each_key(stored))
        for part in parts:
            part.unlink(missing_ok=True)

    def _prune(self) -> None:
        """Delete the oldest parts of the whole store until it fits in max_bytes."""
        parts = []
        for part in (self.root / self.kind).glob("*/part-*.parquet"):
            try:
                stat = part.stat()
            except FileNotFoundError:
                continue
            parts.append((stat.st_mtime, stat.st_size, part))
        total = sum(size for _, size, _ in parts)
        for _, size, part in sorted(parts):
            if total <= self.max_bytes:
                break
            part.unlink(missing_ok=True)
            total -= size
            log.info("%s cache over its limit: removed %s", self.kind, part)


class EmbeddingCache(TextCache):
    """One embedder's vectors (id, embedding)."""

    def __init__(self, root: Path, identity: str, max_bytes: int) -> None:
        super().__init__(root, "embeddings", identity, max_bytes)
