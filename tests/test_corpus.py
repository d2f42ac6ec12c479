"""The benchmark corpus builder: N posts drawn from real files through mpsynth's own ingest, each
platform at its real share, every id unique, every text a real one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mpsynth.config import IngestConfig
from mpsynth.stages.ingest.normalise import ingest
from mpsynth.testing.corpus import build_corpus, real_posts

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "posts.csv"


def test_a_resampled_corpus_keeps_the_real_mix_and_reads_back_through_ingest(tmp_path):
    real = real_posts([DEMO])
    counts = build_corpus(real, 25_000, tmp_path / "corpus.parquet", seed=3)
    corpus = pq.read_table(tmp_path / "corpus.parquet")
    assert corpus.num_rows == 25_000 == sum(counts.values())
    ids = corpus.column("id").to_pylist()
    assert len(set(ids)) == len(ids)  # a post drawn twice is two rows
    assert set(corpus.column("text").to_pylist()) <= set(real.column("text").to_pylist())
    real_share = Counter(real.column("platform").to_pylist())
    for platform, count in counts.items():
        assert count / 25_000 == pytest.approx(real_share[platform] / real.num_rows, abs=0.01)
    again = ingest(
        IngestConfig.model_validate({"inputs": [{"path": str(tmp_path / "corpus.parquet")}]})
    )
    assert again.posts.num_rows == 25_000 and again.quarantine.num_rows == 0
    build_corpus(real, 100, tmp_path / "same.parquet", seed=3)
    assert pq.read_table(tmp_path / "same.parquet").column("id").to_pylist() == ids[:100]
