from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mpsynth.config import LsaEmbedderConfig, PoolsConfig, TopicsConfig, VectorizerConfig
from mpsynth.core.errors import MissingDependencyError
from mpsynth.embedders.lsa import LsaEmbedder
from mpsynth.stages.embed import embeddings_column
from mpsynth.stages.pools import build_pools
from mpsynth.stages.topics import (
    AssignTopics,
    assign_topics,
    fit_topics,
    keep_umap_compilation,
    stop_words,
    stratified_sample,
)
from tests.conftest import read_rows


def test_stop_words_per_language():
    assert {"de", "het", "een"} <= set(stop_words(VectorizerConfig(stop_words="nl")))
    assert {"the", "and"} <= set(stop_words(VectorizerConfig(stop_words="en")))
    assert stop_words(VectorizerConfig(stop_words=None)) is None
    with pytest.raises(ValueError, match="no spaCy language 'xx-nope'"):
        VectorizerConfig(stop_words="xx-nope")


def test_stratified_sample_caps_large_platforms_and_keeps_small_ones():
    platforms = np.array(["twitter"] * 1000 + ["reddit"] * 30)
    rows = stratified_sample(platforms, 100, seed=4)
    assert (platforms[rows] == "twitter").sum() == 100
    assert (platforms[rows] == "reddit").sum() == 30
    assert np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, stratified_sample(platforms, 100, seed=4))


def test_assignment_takes_the_nearest_centroid_above_threshold():
    centroids = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    posts = np.array([[0.9, 0.1], [0.2, 0.98], [-1.0, 0.0]], dtype=np.float32)
    posts /= np.linalg.norm(posts, axis=1, keepdims=True)
    labels, similarity = assign_topics(posts, centroids, threshold=0.5)
    assert labels.tolist() == [0, 1, -1]
    assert similarity[0] == pytest.approx(0.9 / np.hypot(0.9, 0.1))


def test_assign_batch_callable(tmp_path):
    np.save(tmp_path / "c.npy", np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    batch = pa.table(
        {"id": ["a", "b"], "embedding": embeddings_column(np.array([[0, 1], [1, 0]], np.float32))}
    )
    out = AssignTopics(tmp_path / "c.npy", 0.3)(batch)
    assert out.column("topic").to_pylist() == [1, 0]


@pytest.mark.skipif(importlib.util.find_spec("cuml") is not None, reason="cuML is installed here")
def test_gpu_backend_without_cuml_names_the_install_command():
    with pytest.raises(MissingDependencyError, match=r"pip install 'mpsynth\[gpu\]'"):
        fit_topics(["a"] * 50, np.eye(50, dtype=np.float32), TopicsConfig(backend="gpu"), seed=0)


@pytest.mark.slow
def test_political_twitter_and_facebook_topics_mix_and_pools_follow_them():
    """Real IRA tweets and TRAC-1 Facebook comments on politics (1,500 each): topics span both
    platforms, and every MPTM pool's examples share one topic and cover each platform it holds."""
    facebook = [r for r in read_rows("trac1_aggression.csv") if r["platform"] == "facebook"]
    rows = read_rows("ira_tweets.csv")[:1500] + facebook[:1500]
    texts = [r["text"] for r in rows]
    ids = [r["id"] for r in rows]
    platforms = [r["platform"] for r in rows]
    embeddings = LsaEmbedder.fit(texts, LsaEmbedderConfig(dimensions=64), seed=0).encode(texts)
    config = TopicsConfig(min_cluster_size=15)
    fitted = fit_topics(texts, embeddings, config, seed=0)
    labels, _ = assign_topics(embeddings, fitted.centroids, config.outlier_threshold)
    per_topic = {}
    for label, platform in zip(labels.tolist(), platforms, strict=True):
        if label >= 0:
            per_topic.setdefault(label, set()).add(platform)
    mixed = [t for t, p in per_topic.items() if p == {"twitter", "facebook"}]
    assert len(per_topic) >= 5 and len(mixed) >= 2

    pools, _ = build_pools(
        pa.table({"id": ids, "platform": platforms}),
        pa.table({"id": ids, "topic": labels}),
        PoolsConfig(strategies=["mptm"]),
        n_posts=600,
        posts_per_platform=3,
        seed=0,
    )
    topic_of = dict(zip(ids, labels.tolist(), strict=True))
    platform_of = dict(zip(ids, platforms, strict=True))
    assert pools.num_rows > 0
    for pool in pools.to_pylist():
        assert {topic_of[i] for i in pool["example_ids"]} == {pool["topic"]}
        assert {platform_of[i] for i in pool["example_ids"]} == per_topic[pool["topic"]]


def test_umap_compilation_is_kept_for_the_next_process():
    """umap-learn's functions compiled once are written to numba's cache, where the next process
    that fits loads them instead of compiling them again."""
    import umap.distances

    keep_umap_compilation()
    function = umap.distances.euclidean
    function(np.zeros(3, np.float32), np.ones(3, np.float32))
    kept = Path(function._cache.cache_path)
    assert list(kept.glob("distances.euclidean-*.nbi")), kept


def test_exact_neighbours_match_umap_and_their_kernel_is_cached_once_for_every_process():
    """The small-corpus neighbours' distances equal umap-learn's parallel_special_metric with its
    cosine, bit for bit; and the kernel is a fixed function numba keeps under one entry, where
    umap-learn's (the metric an argument) gained an entry in every process until saving failed."""
    import subprocess
    import sys

    import umap.distances

    from mpsynth.stages.pairwise import pairwise_cosine

    points = np.random.default_rng(0).normal(size=(300, 24)).astype(np.float32)
    expected = umap.distances.parallel_special_metric(
        points, metric=umap.distances.named_distances["cosine"]
    )
    assert np.array_equal(pairwise_cosine(points), expected)
    index = Path(pairwise_cosine._cache.cache_path)
    call = (
        "import numpy as np; from mpsynth.stages.pairwise import pairwise_cosine; "
        "pairwise_cosine(np.ones((4, 3), np.float32))"
    )
    subprocess.run([sys.executable, "-c", call], check=True)
    kept = sorted(index.glob("pairwise.pairwise_cosine-*.nbc"))
    for _ in range(2):  # two more processes: loaded from the cache, no new entry
        subprocess.run([sys.executable, "-c", call], check=True)
    assert kept and sorted(index.glob("pairwise.pairwise_cosine-*.nbc")) == kept
    keep_umap_compilation()
    # umap-learn's own stays uncached (it would grow by one entry a process)
    assert umap.distances.parallel_special_metric._cache.__class__.__name__ == "NullCache"


def test_prepare_compiles_the_topic_fit_and_builds_each_onnx_model_once(tmp_path, monkeypatch):
    """`mpsynth prepare` (which `make install` runs): one real topic fit, whose umap-learn
    functions numba keeps for the first run, and each ONNX embedder the configs name built once
    (building one exports it into the cache: test_embedders)."""
    import umap.layouts
    import yaml

    from mpsynth import embedders
    from mpsynth.cli import main
    from mpsynth.stages import topics

    fits, built = [], []
    real_fit = topics.fit_topics

    def fit(texts, vectors, config, seed):
        fits.append(vectors.shape)
        return real_fit(texts, vectors, config, seed)

    monkeypatch.setattr(topics, "fit_topics", fit)
    monkeypatch.setattr(
        embedders, "load_embedder", lambda config, state: built.append(config.backend)
    )
    minilm = {"kind": "sentence-transformers", "backend": "onnx-int8"}
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "ingest": {"inputs": [{"path": "posts.csv"}]},
                "embed": {"embedder": minilm},  # the demo's model: built once for both configs
                "evaluate": {"embedder": {**minilm, "backend": "onnx"}},
            }
        )
    )
    demo = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    assert main(["prepare", str(demo), str(other)]) == 0
    assert len(fits) == 1 and fits[0][1] == 384
    assert built == ["onnx-int8", "onnx"]  # the PyTorch and LSA embedders need nothing built
    layout = umap.layouts._nb_optimize_layout_euclidean_single_epoch
    kept = Path(layout._cache.cache_path)
    assert layout.signatures and list(
        kept.glob("layouts._optimize_layout_euclidean_single_epoch-*.nbi")
    )
