"""The embedding cache: texts encoded once per embedder, never shared across embedders, safe when a
writer dies and bounded in size."""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa

from mpsynth.config import LsaEmbedderConfig, SentenceTransformersEmbedderConfig
from mpsynth.core import schema
from mpsynth.embedders.cache import COMPACT_AT, EmbeddingCache, embedder_identity, text_keys
from mpsynth.embedders.lsa import LsaEmbedder
from mpsynth.stages.embed import embeddings_column, embeddings_matrix
from tests.conftest import read_rows


def _rows(texts: list[str], vectors: np.ndarray) -> pa.Table:
    return pa.Table.from_arrays(
        [text_keys(texts), embeddings_column(vectors)],
        schema=schema.embeddings_schema(vectors.shape[1]),
    )


def _texts(n: int) -> list[str]:
    return list(dict.fromkeys(r["text"] for r in read_rows("demo")))[:n]  # distinct texts


def _found(cache: EmbeddingCache, texts: list[str]) -> dict[str, np.ndarray]:
    """text -> the vector the cache holds for it (texts it lacks are absent)."""
    stored = cache.lookup(text_keys(texts))
    if stored is None:
        return {}
    vectors = embeddings_matrix(stored.column("embedding"))
    row = {key: i for i, key in enumerate(stored.column("id").to_pylist())}
    keys = text_keys(texts).to_pylist()
    return {t: vectors[row[k]] for t, k in zip(texts, keys, strict=True) if k in row}


def test_a_text_is_found_by_its_content_and_a_new_one_is_not(tmp_path):
    texts = _texts(40)
    vectors = np.random.default_rng(0).random((40, 8), dtype=np.float32)
    cache = EmbeddingCache(tmp_path, "a" * 32, max_bytes=1 << 30)
    cache.add(_rows(texts[:30], vectors[:30]))
    found = _found(cache, texts)
    assert set(found) == set(texts[:30])
    for i, text in enumerate(texts[:30]):
        np.testing.assert_array_equal(found[text], vectors[i])
    assert not list(tmp_path.rglob("*.tmp"))  # written under a temporary name, then renamed


def test_two_embedders_never_see_each_others_vectors(tmp_path):
    texts = _texts(200)
    small = LsaEmbedderConfig(dimensions=8, min_df=1)
    other = LsaEmbedderConfig(dimensions=8, min_df=2)
    state = LsaEmbedder.fit(texts, small, seed=0).save(tmp_path / "a.joblib")
    refit = LsaEmbedder.fit(texts[:100], small, seed=0).save(tmp_path / "b.joblib")
    identities = {
        embedder_identity(small, state),
        embedder_identity(other, state),  # another setting
        embedder_identity(small, refit),  # the same settings fitted on other texts
    }
    assert len(identities) == 3
    # the batch size changes how texts go through, not the vectors: the same identity
    minilm = SentenceTransformersEmbedderConfig()
    assert embedder_identity(minilm.model_copy(update={"batch_size": 8}), None) == (
        embedder_identity(minilm, None)
    )
    shorter = minilm.model_copy(update={"max_seq_length": 128})
    assert embedder_identity(shorter, None) != embedder_identity(minilm, None)
    first = EmbeddingCache(tmp_path / "store", embedder_identity(small, state), 1 << 30)
    first.add(_rows(texts, np.ones((200, 8), np.float32)))
    second = EmbeddingCache(tmp_path / "store", embedder_identity(small, refit), 1 << 30)
    assert len(_found(first, texts)) == 200 and second.lookup(text_keys(texts)) is None


def test_a_half_written_part_is_ignored(tmp_path):
    texts = _texts(10)
    cache = EmbeddingCache(tmp_path, "b" * 32, 1 << 30)
    cache.add(_rows(texts[:5], np.ones((5, 4), np.float32)))
    # a writer killed mid-write leaves its temporary file, never a part
    (cache.folder / ".part-dead.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert set(_found(cache, texts)) == set(texts[:5])


def test_many_parts_are_compacted_without_losing_a_vector(tmp_path):
    texts = _texts(COMPACT_AT + 5)
    cache = EmbeddingCache(tmp_path, "c" * 32, 1 << 30)
    vectors = np.arange(len(texts) * 4, dtype=np.float32).reshape(-1, 4)
    for i, text in enumerate(texts):
        cache.add(_rows([text, texts[0]], vectors[[i, 0]]))  # texts[0] filed again every time
    assert len(list(cache.folder.glob("part-*.parquet"))) < COMPACT_AT
    found = _found(cache, texts)
    for i, text in enumerate(texts):  # every text keeps its vector, however often filed
        np.testing.assert_array_equal(found[text], vectors[i])


def test_the_store_stays_under_its_limit_and_the_oldest_parts_go_first(tmp_path):
    texts = _texts(60)
    cache = EmbeddingCache(tmp_path, "d" * 32, 1 << 30)
    for n in range(3):
        cache.add(_rows(texts[n * 20 : (n + 1) * 20], np.ones((20, 64), np.float32)))
        for part in cache.folder.glob("part-*.parquet"):  # distinct ages, oldest first
            if time.time() - part.stat().st_mtime < 1:
                os.utime(part, (time.time() - 100 + n, time.time() - 100 + n))
    sizes = sorted(p.stat().st_size for p in cache.folder.glob("part-*.parquet"))
    bounded = EmbeddingCache(tmp_path, "e" * 32, max_bytes=sum(sizes) - 1)
    bounded.add(_rows(texts[:1], np.ones((1, 64), np.float32)))  # over the limit: pruned
    total = sum(p.stat().st_size for p in tmp_path.rglob("part-*.parquet"))
    assert total <= sum(sizes) - 1
    kept = _found(cache, texts)
    assert not set(texts[:20]) & set(kept) and set(texts[40:]) <= set(kept)  # the oldest went


class _Counter:
    """Stands in for the Ray actor that counts rows: `.add.remote(n)` records n."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.add = self
        self.remote = self.calls.append


def test_a_large_batch_reports_progress_slice_by_slice():
    from mpsynth.distributed.data import _counted

    batch = pa.table({"text": _texts(1000)})
    counter = _Counter()
    out = _counted(lambda b: b.append_column("n", pa.array([len(b)] * len(b))), batch, counter, 256)
    assert counter.calls == [256, 256, 256, 232]  # the display hears of each slice
    assert out.column("text").equals(batch.column("text"))  # every row, in order
    assert set(out.column("n").to_pylist()) == {256, 232}  # the model saw slices, not the block
    whole = _Counter()
    _counted(lambda b: b, batch, whole, None)
    assert whole.calls == [1000]
