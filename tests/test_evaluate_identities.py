"""Real against itself scores as identical; real against a copy stripped of hashtags and URLs moves
exactly the metrics that should move."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from mpsynth.config import EvaluateConfig, LsaEmbedderConfig
from mpsynth.embedders.lsa import LsaEmbedder
from mpsynth.metrics.entities import load_pipeline, post_entities
from mpsynth.metrics.lexical import add_lexical_features
from mpsynth.stages.embed import embeddings_column
from mpsynth.stages.evaluate.aggregate import (
    PostFeatures,
    entity_column,
    family_metrics,
    lexical_metrics,
)
from mpsynth.stages.topics import assign_topics
from mpsynth.testing import build_tiny_ner_pipeline
from tests.conftest import first_per_platform

STRIP = re.compile(r"(?i)(?:https?://|www\.)\S+|#\w+")
CONFIG = EvaluateConfig(bootstrap_samples=20, detectability_sample=400)


@pytest.fixture(scope="module")
def real(demo_rows):
    rows = first_per_platform(demo_rows, 150)
    return pa.table(
        {
            "id": [r["id"] for r in rows],
            "platform": [r["platform"] for r in rows],
            "text": [r["text"] for r in rows],
        }
    )


@pytest.fixture(scope="module")
def metrics(real, tmp_path_factory):
    from tests.test_entities import ENTITIES

    pipeline = build_tiny_ner_pipeline(tmp_path_factory.mktemp("ner") / "pipeline", ENTITIES)
    config = CONFIG.model_copy(update={"ner_model": str(pipeline)})
    texts = real["text"].to_pylist()
    stripped = [STRIP.sub("", t).strip() or "." for t in texts]
    lsa = LsaEmbedderConfig(dimensions=32, min_df=1)
    embedder = LsaEmbedder.fit(texts, lsa, seed=0)
    state = embedder.save(tmp_path_factory.mktemp("lsa") / "lsa.joblib")
    vectors = embedder.encode(texts)
    centroids = vectors[np.random.default_rng(0).choice(len(vectors), 6, replace=False)]
    topics, _ = assign_topics(vectors, centroids, 0.0)
    samples = {
        "real": real,
        "copy": real,
        "stripped": real.set_column(2, "text", pa.array(stripped)),
    }
    post_features = PostFeatures(config.sentiment)  # the stage's actor
    nlp = load_pipeline(config.ner_model)
    for name, table in samples.items():
        computed = post_features(table.select(["text"]))
        for column in computed.column_names:
            table = table.append_column(column, computed.column(column))
        mentions = post_entities(nlp, table.column("text").to_pylist())
        table = table.append_column("entities", entity_column(mentions))
        encoded = LsaEmbedder.load(state).encode(table.column("text").to_pylist())
        samples[name] = table.append_column("embedding", embeddings_column(encoded))
    families, _ = family_metrics(samples, topics, centroids, 0.0, config, seed=0)
    features = pa.concat_tables(
        add_lexical_features(t.select(["platform", "text"])).append_column(
            "dataset", pa.array([n] * t.num_rows)
        )
        for n, t in samples.items()
    )
    lexical = lexical_metrics(features, CONFIG, seed=0)
    rows = pa.concat_tables([lexical, families]).to_pylist()
    return {
        (r["dataset"], r["metric"], r["platform"]): r["value"] for r in rows if r["topic"] is None
    }


def test_real_against_itself_is_identical(metrics):
    assert any(metric.endswith("_found") for _, metric, _ in metrics)  # the entity family ran
    for (dataset, metric, platform), value in metrics.items():
        if dataset != "copy":
            continue
        if metric.endswith(("divergence", "ks_distance")):
            assert value == 0.0, (metric, platform)
        elif metric == "hashtag_set_overlap" or metric.endswith("_found"):
            assert value == 1.0, (metric, platform)  # no entity missing either
        elif metric.endswith("rank_correlation"):
            assert value == pytest.approx(1.0), platform
        elif "counterpart@" in metric or metric == "real_topics_covered":
            assert value == 1.0, (metric, platform)
        elif metric == "detectability_auc":
            assert value == pytest.approx(0.5, abs=0.05), platform
        elif metric == "mean_within_similarity":
            continue  # a random sample of pairs: compared below within its own spread
        elif ("real", metric, platform) in metrics:
            assert value == pytest.approx(metrics[("real", metric, platform)]), (metric, platform)
    for platform in ("twitter", "all"):
        assert metrics[("copy", "mean_within_similarity", platform)] == pytest.approx(
            metrics[("real", "mean_within_similarity", platform)], abs=0.02
        )


def test_stripping_hashtags_and_urls_moves_exactly_those_lexical_metrics(metrics):
    moved = {
        "share_with_hashtags",
        "mean_hashtags",
        "share_with_urls",
        "mean_urls",
        "mean_chars",
        "mean_words",
    }
    still = {"share_with_mentions", "mean_mentions", "share_with_emojis", "mean_emojis"}
    twitter_real = {m: metrics[("real", m, "twitter")] for m in moved | still}
    twitter_stripped = {m: metrics[("stripped", m, "twitter")] for m in moved | still}
    assert twitter_real["share_with_hashtags"] > 0.3 and twitter_real["share_with_urls"] > 0.3
    for metric in ("share_with_hashtags", "mean_hashtags", "share_with_urls", "mean_urls"):
        assert twitter_stripped[metric] == 0.0
    assert twitter_stripped["mean_chars"] < twitter_real["mean_chars"]
    assert twitter_stripped["mean_words"] < twitter_real["mean_words"]
    for metric in still:
        assert twitter_stripped[metric] == twitter_real[metric], metric
    assert metrics[("stripped", "hashtag_set_overlap", "twitter")] == 0.0
    assert metrics[("stripped", "length_ks_distance", "twitter")] > 0.1
