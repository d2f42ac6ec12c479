"""Topics: BERTopic (UMAP + HDBSCAN + c-TF-IDF keywords) over the precomputed embeddings.

Besides BERTopic's own labels, the stage keeps one unit centroid per topic, so that any post (a real
one, or later a synthetic one embedded in the same space) can be placed in the real topics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mpsynth import schema
from mpsynth.config import TopicsConfig
from mpsynth.errors import InputError

OUTLIER = -1


@dataclass
class TopicModel:
    model: object  # the fitted BERTopic
    labels: np.ndarray  # topic per input post, -1 for outliers
    centroids: np.ndarray  # (n_topics, dim) unit vectors, row i is topic i


def fit_topics(
    texts: list[str], embeddings: np.ndarray, config: TopicsConfig, seed: int
) -> TopicModel:
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    n_posts = len(texts)
    if n_posts <= config.n_neighbors + 1:
        raise InputError(
            f"topic modelling needs more posts than topics.n_neighbors={config.n_neighbors} "
            f"(got {n_posts})"
        )
    umap_model = UMAP(
        n_neighbors=config.n_neighbors,
        n_components=config.n_components,
        min_dist=config.min_dist,
        metric="cosine",
        random_state=seed,
        low_memory=True,
    )
    hdbscan_model = HDBSCAN(
        min_cluster_size=config.min_cluster_size,
        min_samples=config.min_samples,
        metric="euclidean",
        cluster_selection_method="eom",
        prediction_data=True,
    )
    vectorizer = CountVectorizer(stop_words=config.stop_words, min_df=1)
    model = BERTopic(
        umap_model=umap_model,
        hdbscan_model=hdbscan_model,
        vectorizer_model=vectorizer,
        top_n_words=config.top_n_words,
        calculate_probabilities=False,
        verbose=False,
    )
    labels = np.asarray(model.fit_transform(texts, embeddings=embeddings)[0], dtype=np.int64)
    return TopicModel(model=model, labels=labels, centroids=topic_centroids(embeddings, labels))


def topic_centroids(embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    n_topics = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    centroids = np.zeros((n_topics, embeddings.shape[1]), dtype=np.float32)
    for topic in range(n_topics):
        members = embeddings[labels == topic]
        if len(members):
            centroids[topic] = members.mean(axis=0)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.where(norms == 0, 1.0, norms)


def similarity_to_topics(
    embeddings: np.ndarray, labels: np.ndarray, centroids: np.ndarray
) -> np.ndarray:
    """Cosine of each post to its own topic's centroid (to the nearest centroid for outliers)."""
    if centroids.shape[0] == 0:
        return np.zeros(len(labels), dtype=np.float32)
    sims = embeddings @ centroids.T
    own = sims[np.arange(len(labels)), np.clip(labels, 0, None)]
    return np.where(labels >= 0, own, sims.max(axis=1)).astype(np.float32)


def assignments_table(ids: pa.Array, labels: np.ndarray, similarity: np.ndarray) -> pa.Table:
    return pa.Table.from_arrays(
        [ids, pa.array(labels, pa.int64()), pa.array(similarity, pa.float32())],
        schema=schema.TOPIC_ASSIGNMENTS,
    )


def topics_table(
    fitted: TopicModel,
    ids: list[str],
    platforms: list[str],
    similarity: np.ndarray,
    representative_posts: int,
) -> pa.Table:
    labels = fitted.labels
    ids_array = np.asarray(ids, dtype=object)
    platform_array = np.asarray(platforms, dtype=object)
    rows: dict[str, list] = {name: [] for name in schema.TOPICS.names}
    for topic in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == topic)
        words = fitted.model.get_topic(topic) or []
        values, counts = np.unique(platform_array[members], return_counts=True)
        closest = members[np.argsort(-similarity[members], kind="stable")[:representative_posts]]
        rows["topic"].append(topic)
        rows["size"].append(len(members))
        rows["keywords"].append([word for word, _ in words if word])
        rows["platform_counts"].append(list(zip(values.tolist(), counts.tolist(), strict=True)))
        rows["representative_ids"].append(ids_array[closest].tolist())
    return pa.Table.from_pydict(rows, schema=schema.TOPICS)
