"""Topics: BERTopic (UMAP + HDBSCAN + c-TF-IDF keywords) fitted on a stratified sample of the
precomputed embeddings, then every post assigned to its nearest topic centroid.

Fitting on a sample keeps UMAP and HDBSCAN tractable for millions of posts; the centroid assignment
is a cheap streaming pass, and the same centroids place synthetic posts in the real topics later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import TopicsConfig, VectorizerConfig
from mpsynth.core import console, schema
from mpsynth.core.errors import InputError, MissingDependencyError
from mpsynth.rundir.context import StageContext, rows_by_id, write_table
from mpsynth.stages.embed import embeddings_matrix

OUTLIER = -1
# cuML UMAP with a fixed random_state falls back to brute-force neighbours, which stops scaling.
GPU_DETERMINISTIC_MAX_ROWS = 50_000
GPU_INSTALL = "pip install 'mpsynth[gpu]' on a machine with an NVIDIA GPU and CUDA 13"


@dataclass
class TopicModel:
    model: object  # the fitted BERTopic
    labels: np.ndarray  # HDBSCAN's topic per fitted post, -1 for outliers
    centroids: np.ndarray  # (n_topics, dim) unit vectors, row i is topic i
    keywords: dict[int, list[str]]


def stop_words(vectorizer: VectorizerConfig) -> list[str] | None:
    """The spaCy stop-word list of the configured language (bundled with spaCy: no download)."""
    if vectorizer.stop_words is None:
        return None
    import spacy.util

    return sorted(spacy.util.get_lang_class(vectorizer.stop_words).Defaults.stop_words)


def stratified_sample(platforms: np.ndarray, per_platform: int, seed: int) -> np.ndarray:
    """Sorted row indices: every row of a platform with at most `per_platform` rows, else a seeded
    sample of that many, so a large platform cannot drown a small one in the fit."""
    rng = np.random.default_rng(seed)
    chosen = []
    for platform in np.unique(platforms):
        rows = np.flatnonzero(platforms == platform)
        chosen.append(
            rows if len(rows) <= per_platform else rng.choice(rows, per_platform, replace=False)
        )
    return np.sort(np.concatenate(chosen))


def _hdbscan_options(config: TopicsConfig) -> dict:
    """The same clustering on either backend (umap-learn/hdbscan or cuML)."""
    return {
        "min_cluster_size": config.min_cluster_size,
        "min_samples": config.min_samples,
        "metric": "euclidean",
        "cluster_selection_method": "eom",
        "prediction_data": True,
    }


UMAP_EXACT_BELOW = 4096  # umap-learn computes every pairwise distance below this many points


@cache
def keep_umap_compilation() -> None:
    """Ask numba to keep umap-learn's compiled functions. umap-learn compiles them in every
    process that fits (about 30 s on 2 cores, more than the fit itself on a few thousand posts)
    and, unlike pynndescent, does not ask numba to keep them; kept, a later process loads them
    from numba's cache (beside umap-learn's sources, or under NUMBA_CACHE_DIR). Same machine
    code, same layout."""
    import umap.distances
    import umap.layouts
    import umap.sparse
    import umap.spectral
    import umap.umap_
    import umap.utils
    from numba.core.registry import CPUDispatcher

    for module in (
        umap.distances,
        umap.layouts,
        umap.sparse,
        umap.spectral,
        umap.umap_,
        umap.utils,
    ):
        for value in vars(module).values():
            # parallel_special_metric takes its metric as an argument: numba keys each process's
            # compilation by that function's identity, so its cache only grows (a new entry per
            # run) until saving it fails; mpsynth.stages.pairwise stands in for it
            if (
                isinstance(value, CPUDispatcher)
                and value is not umap.distances.parallel_special_metric
            ):
                value.enable_caching()


def exact_cosine_neighbours(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points by cosine distance, as umap-learn finds them for fewer than
    4,096 points (every pairwise distance by its own cosine, in float64; neighbours by a stable
    sort), but with the distances computed in one parallel numba pass instead of once per pair
    through scikit-learn's Python loop (75 s of a 120 s fit on 3,999 posts)."""
    from umap.distances import named_distances
    from umap.utils import fast_knn_indices

    from mpsynth.stages.pairwise import pairwise_cosine

    points = np.ascontiguousarray(embeddings, dtype=np.float32)
    cosine = named_distances["cosine"]
    distances = pairwise_cosine(points)
    # the diagonal as scikit-learn fills it: the metric of each point with itself (not always 0)
    distances[np.diag_indices_from(distances)] = [cosine(p, p) for p in points]
    nearest = fast_knn_indices(distances, k)
    return nearest, np.take_along_axis(distances, nearest.astype(np.int64), axis=1)


def _cpu_models(config: TopicsConfig, seed: int, embeddings: np.ndarray):
    from hdbscan import HDBSCAN
    from umap import UMAP

    keep_umap_compilation()
    exact = (
        exact_cosine_neighbours(embeddings, config.n_neighbors)
        if len(embeddings) < UMAP_EXACT_BELOW
        else None
    )
    umap_model = UMAP(
        n_neighbors=config.n_neighbors,
        n_components=config.n_components,
        min_dist=config.min_dist,
        metric="cosine",
        random_state=seed,
        low_memory=True,
        precomputed_knn=(*exact, None) if exact is not None else (None, None, None),
    )
    return umap_model, HDBSCAN(**_hdbscan_options(config))


def _gpu_models(config: TopicsConfig, n_rows: int, seed: int):
    try:
        import cupy
        from cuml.cluster import HDBSCAN
        from cuml.manifold import UMAP
    except ImportError:
        raise MissingDependencyError(
            "topics.backend=gpu needs cuML, which is not installed", GPU_INSTALL
        ) from None
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        devices = 0
    if devices == 0:
        raise MissingDependencyError(
            "topics.backend=gpu but no CUDA device is visible", GPU_INSTALL
        )
    umap_model = UMAP(
        n_neighbors=config.n_neighbors,
        n_components=config.n_components,
        min_dist=config.min_dist,
        metric="euclidean",  # the embeddings are unit vectors: the same neighbours as cosine
        build_algo="nn_descent",
        random_state=seed if n_rows <= GPU_DETERMINISTIC_MAX_ROWS else None,
    )
    return umap_model, HDBSCAN(**_hdbscan_options(config))


def fit_topics(
    texts: list[str], embeddings: np.ndarray, config: TopicsConfig, seed: int
) -> TopicModel:
    from bertopic import BERTopic
    from sklearn.feature_extraction.text import CountVectorizer

    n_posts = len(texts)
    if n_posts <= config.n_neighbors + 1:
        raise InputError(
            f"topic modelling needs more posts than topics.n_neighbors={config.n_neighbors} (got {n_posts})"
        )
    match config.backend:
        case "cpu":
            umap_model, hdbscan_model = _cpu_models(config, seed, embeddings)
        case "gpu":
            umap_model, hdbscan_model = _gpu_models(config, n_posts, seed)
    vectorizer = CountVectorizer(
        stop_words=stop_words(config.vectorizer),
        ngram_range=tuple(config.vectorizer.ngram_range),
        min_df=config.vectorizer.min_df,
    )
    model = BERTopic(
        umap_model=umap_model,
        hdbscan_model=hdbscan_model,
        vectorizer_model=vectorizer,
        top_n_words=config.top_n_words,
        calculate_probabilities=False,
        verbose=False,
    )
    labels = np.asarray(model.fit_transform(texts, embeddings=embeddings)[0], dtype=np.int64)
    keywords = {
        topic: [word for word, _ in (model.get_topic(topic) or []) if word]
        for topic in sorted(set(labels.tolist()))
    }
    return TopicModel(model, labels, topic_centroids(embeddings, labels), keywords)


def topic_centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    n_topics = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    centroids = np.zeros((n_topics, embeddings.shape[1]), dtype=np.float32)
    for topic in range(n_topics):
        members = embeddings[labels == topic]
        if len(members):
            centroids[topic] = members.mean(axis=0)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.where(norms == 0, 1.0, norms)


def assign_topics(
    embeddings: np.ndarray, centroids: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid by cosine for each post; an outlier (-1) when even that is below threshold."""
    if centroids.shape[0] == 0:
        return np.full(len(embeddings), OUTLIER, np.int64), np.zeros(len(embeddings), np.float32)
    similarity = embeddings @ centroids.T
    nearest = similarity.argmax(axis=1)
    best = similarity[np.arange(len(nearest)), nearest].astype(np.float32)
    return np.where(best >= threshold, nearest, OUTLIER).astype(np.int64), best


class AssignTopics:
    """Batch callable for the assignment pass: (id, embedding) in, (id, topic, similarity) out."""

    def __init__(self, centroids_path: Path, threshold: float) -> None:
        self.centroids = np.load(centroids_path)
        self.threshold = threshold

    def __call__(self, batch: pa.Table) -> pa.Table:
        labels, similarity = assign_topics(
            embeddings_matrix(batch.column("embedding")), self.centroids, self.threshold
        )
        return pa.Table.from_arrays(
            [batch.column("id"), pa.array(labels, pa.int64()), pa.array(similarity, pa.float32())],
            schema=schema.TOPIC_ASSIGNMENTS,
        )


def topics_table(
    keywords: dict[int, list[str]],
    assignments: pa.Table,
    platform_of: dict[str, str],
    representative_posts: int,
) -> pa.Table:
    """One row per topic (and the outliers): size, keywords, per-platform counts, and the posts
    closest to its centroid."""
    ids = np.asarray(assignments.column("id").to_pylist(), dtype=object)
    labels = assignments.column("topic").to_numpy()
    similarity = assignments.column("topic_similarity").to_numpy()
    platforms = np.asarray([platform_of[i] for i in ids], dtype=object)
    rows: dict[str, list] = {name: [] for name in schema.TOPICS.names}
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for members in np.split(order, bounds) if len(order) else []:
        topic = int(labels[members[0]])
        values, counts = np.unique(platforms[members], return_counts=True)
        closest = members[np.argsort(-similarity[members], kind="stable")[:representative_posts]]
        rows["topic"].append(topic)
        rows["size"].append(len(members))
        rows["keywords"].append(keywords.get(topic, []))
        rows["platform_counts"].append(list(zip(values.tolist(), counts.tolist(), strict=True)))
        rows["representative_ids"].append(ids[closest].tolist())
    return pa.Table.from_pydict(rows, schema=schema.TOPICS)


log = logging.getLogger(__name__)


def topic_names(topics: Path, words: int = 4) -> dict[int, str]:
    """Each topic by its number and first keywords ("12: chanel, flap, classic, fake"), from the
    topics stage's topics.parquet; the outliers are "-1: outliers"."""
    table = pq.read_table(topics, columns=["topic", "keywords"])
    return {
        topic: f"{topic}: outliers" if topic == -1 else f"{topic}: {', '.join(keys[:words])}"
        for topic, keys in zip(
            table.column("topic").to_pylist(), table.column("keywords").to_pylist(), strict=True
        )
    }


def topic_of(assignments: Path) -> dict[str, int]:
    """Each post's topic, by id, from the topics stage's assignments."""
    table = pq.read_table(assignments, columns=["id", "topic"])
    return dict(zip(table.column("id").to_pylist(), table.column("topic").to_pylist(), strict=True))


def run_topics(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.distributed.data import map_parquet
    from mpsynth.stages.embed import embeddings_matrix
    from mpsynth.stages.topics import AssignTopics, fit_topics, stratified_sample, topics_table

    topics = ctx.config.topics
    posts_path = ctx.path("ingest", "posts.parquet")
    embeddings_dir = ctx.path("embed", "embeddings")
    posts = pq.read_table(posts_path, columns=["id", "platform"])
    platforms = np.asarray(posts.column("platform").to_pylist(), dtype=object)
    sample = stratified_sample(platforms, topics.fit_sample_per_platform, ctx.config.seed)
    sample_ids = posts.column("id").take(pa.array(sample)).to_pylist()
    texts = rows_by_id(posts_path, sample_ids, "text").column("text").to_pylist()
    embedded = rows_by_id(embeddings_dir, sample_ids, "embedding")
    log.info(
        "topics: fitting on %d of %d posts (%s backend)",
        len(sample),
        len(platforms),
        topics.backend,
    )
    matrix = embeddings_matrix(embedded.column("embedding"))
    with console.progress("topics: fitting UMAP + HDBSCAN", None, unit="posts"):
        if topics.backend == "gpu":  # cuML on a GPU worker: the driver's node may have none
            from mpsynth.distributed.tasks import run_remote

            fitted = run_remote(
                fit_topics,
                texts,
                matrix,
                topics,
                ctx.config.seed,
                num_cpus=ctx.config.ray.actor_num_cpus,
                num_gpus=1,
                resources=ctx.config.ray.resources_for("topics"),
            )
        else:
            fitted = fit_topics(texts, matrix, topics, ctx.config.seed)
    console.tame_library_loggers()  # BERTopic adds a console handler of its own when built
    np.save(out / "centroids.npy", fitted.centroids)
    fitted.model.save(
        str(out / "bertopic"),
        serialization="safetensors",
        save_ctfidf=True,
        save_embedding_model=False,
    )
    map_parquet(
        embeddings_dir,
        out / "assignments",
        AssignTopics,
        constructor_kwargs={
            "centroids_path": out / "centroids.npy",
            "threshold": topics.outlier_threshold,
        },
        actors=1,
        num_cpus=ctx.config.ray.actor_num_cpus,
        resources=ctx.config.ray.resources_for("topics"),
        batch_size=topics.assign_batch_size,
        description="topics: assigning posts",
        local_rows=ctx.config.ray.local_rows,
    )
    assignments = pq.read_table(out / "assignments")
    platform_of = dict(zip(posts.column("id").to_pylist(), platforms.tolist(), strict=True))
    table = topics_table(fitted.keywords, assignments, platform_of, topics.representative_posts)
    write_table(table, out / "topics.parquet")
    mixed = sum(1 for r in table.to_pylist() if r["topic"] >= 0 and len(r["platform_counts"]) > 1)
    outliers = int(pc.sum(pc.equal(assignments.column("topic"), -1)).as_py() or 0)
    log.info(
        "topics: %d topics (%d span several platforms), %d outliers",
        len(fitted.centroids),
        mixed,
        outliers,
    )
    return {
        "assignments": assignments.num_rows,
        "topics": len(fitted.centroids),
        "mixed_platform_topics": mixed,
        "outliers": outliers,
        "fit_sample": len(sample),
    }
