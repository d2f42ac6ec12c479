"""Evaluate: aggregate per-post features into metric rows (long format), real and every synthetic
set, per platform and over all platforms, with bootstrap confidence intervals."""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from mpsynth.config import EvaluateConfig, SentimentConfig
from mpsynth.core import console, schema
from mpsynth.metrics.lexical import FEATURES, lexical_metric_values
from mpsynth.metrics.stats import bootstrap_mean_ci

log = logging.getLogger(__name__)


def sample_per_platform(table: pa.Table, limit: int | None, seed: int) -> pa.Table:
    """At most `limit` rows of each platform (seeded), or the whole table when limit is None."""
    if limit is None:
        return table
    rng = np.random.default_rng(seed)
    platforms = np.asarray(table.column("platform").to_pylist(), dtype=object)
    keep = []
    for platform in np.unique(platforms):
        rows = np.flatnonzero(platforms == platform)
        keep.append(rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False)))
    return table.take(np.sort(np.concatenate(keep)))


def lexical_metrics(features: pa.Table, config: EvaluateConfig, seed: int) -> pa.Table:
    """Metric rows from a features table with columns dataset, platform and FEATURES."""
    rows: dict[str, list] = {name: [] for name in schema.METRICS.names}
    datasets = np.asarray(features.column("dataset").to_pylist(), dtype=object)
    platforms = np.asarray(features.column("platform").to_pylist(), dtype=object)
    columns = {name: features.column(name).to_numpy() for name in FEATURES}
    rng = np.random.default_rng(seed)
    for dataset in dict.fromkeys(datasets.tolist()):
        in_dataset = datasets == dataset
        groups = [(p, in_dataset & (platforms == p)) for p in sorted(set(platforms[in_dataset]))]
        for platform, mask in [*groups, (schema.ALL_PLATFORMS, in_dataset)]:
            values = lexical_metric_values({name: col[mask] for name, col in columns.items()})
            for metric, per_post in values.items():
                low, high = bootstrap_mean_ci(
                    per_post, config.bootstrap_samples, config.confidence, rng
                )
                rows["family"].append("lexical")
                rows["metric"].append(metric)
                rows["dataset"].append(dataset)
                rows["platform"].append(platform)
                rows["topic"].append(None)
                rows["topic_name"].append(None)
                rows["value"].append(float(per_post.mean()) if len(per_post) else float("nan"))
                rows["ci_low"].append(low)
                rows["ci_high"].append(high)
                rows["n"].append(int(mask.sum()))
    return pa.Table.from_pydict(rows, schema=schema.METRICS)


class PostFeatures:
    """Batch callable (Ray Data actor) for the per-post features the sampled families need besides
    the embeddings and entities (which come from their caches): the post's language (declared in a
    `lang` column, else identified when `detect_language`), its sentiment class (its language's
    backend) and whether that backend covers its language."""

    def __init__(
        self,
        sentiment: SentimentConfig,
        by_language: dict[str, SentimentConfig] | None = None,
        detect_language: bool = False,
    ) -> None:
        self.sentiment = sentiment
        self.by_language = by_language or {}
        self.detect_language = detect_language

    def __call__(self, batch: pa.Table) -> pa.Table:
        from mpsynth.metrics.sentiment import detect_languages, routed_sentiment

        texts = batch.column("text").to_pylist()
        skip = ("text", "lang")
        columns = {name: batch.column(name) for name in batch.column_names if name not in skip}
        languages = (
            batch.column("lang").to_pylist()
            if "lang" in batch.column_names
            else [None] * len(texts)
        )
        missing = [i for i, language in enumerate(languages) if language is None]
        if self.detect_language and missing:
            for i, language in zip(
                missing, detect_languages([texts[i] for i in missing]), strict=True
            ):
                languages[i] = language
        classes, covered = routed_sentiment(texts, languages, self.sentiment, self.by_language)
        columns["lang"] = pa.array(languages, pa.string())
        columns["sentiment"] = pa.array(classes, pa.int64())
        columns["sentiment_covered"] = pa.array(covered, pa.bool_())
        return pa.table(columns)


def entity_column(mentions: list[frozenset]) -> pa.Array:
    """The `entities` column of the sampled posts: each post's (text, label) entities as sorted
    "LABEL\ttext" strings."""
    return pa.array(
        [sorted(f"{label}\t{text}" for text, label in m) for m in mentions], pa.list_(pa.string())
    )


def family_metrics(
    samples: dict[str, pa.Table],
    real_topics: np.ndarray,
    centroids: np.ndarray,
    outlier_threshold: float,
    config: EvaluateConfig,
    seed: int,
) -> tuple[pa.Table, pa.Table]:
    """Sentiment, similarity, topic, linguistic, entity and detectability rows (every set described
    on its own, every synthetic set compared with the real one, per platform and over all
    platforms), per-topic rows, and the 2-D embedding map. Each sample table carries its posts'
    PostFeatures columns (embedding, sentiment, entities)."""
    from mpsynth.metrics.compare import (
        COVERED,
        EvalSet,
        compare,
        describe,
        entities_key,
        sentiment_key,
    )
    from mpsynth.stages.embed import embeddings_matrix
    from mpsynth.stages.topics import assign_topics

    def as_set(name: str, table: pa.Table, topics: np.ndarray | None) -> EvalSet:
        vectors = embeddings_matrix(table.column("embedding"))
        if topics is None:
            topic_space = (
                embeddings_matrix(table.column("topic_embedding"))
                if "topic_embedding" in table.column_names
                else vectors
            )
            topics = assign_topics(topic_space, centroids, outlier_threshold)[0]
        data = EvalSet(
            name,
            table.column("text").to_pylist(),
            np.asarray(table.column("platform").to_pylist(), dtype=object),
            vectors,
            topics,
        )
        data.per_post[sentiment_key(config.sentiment)] = table.column("sentiment").to_numpy()
        data.per_post[COVERED] = table.column("sentiment_covered").to_numpy(zero_copy_only=False)
        if config.ner_model is not None:
            data.per_post[entities_key(config.ner_model)] = [
                frozenset(tuple(e.split("\t", 1)[::-1]) for e in mentions)
                for mentions in table.column("entities").to_pylist()
            ]
        return data

    real = as_set(schema.REAL, samples[schema.REAL], real_topics)
    synthetic = [as_set(n, t, None) for n, t in samples.items() if n != schema.REAL]
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    platforms = [*sorted(set(real.platforms.tolist())), schema.ALL_PLATFORMS]
    # minutes on a large run: progress per comparison (one set on one platform)
    log.info(
        "evaluate: comparing %d sets with the real posts, on %d platforms and overall",
        len(synthetic),
        len(platforms) - 1,
    )
    with console.progress(
        "evaluate: comparing sets", len(platforms) * len(synthetic), "comparisons"
    ) as shown:
        for platform in platforms:
            real_part = real.subset(platform)
            parts = [p for p in (data.subset(platform) for data in synthetic) if p.texts]
            size = min(len(p.texts) for p in [real_part, *parts])
            rows += describe(real_part, platform, config, rng, size)
            for part in parts:
                rows += describe(part, platform, config, rng, size)
                rows += compare(real_part, part, platform, len(centroids), config, seed)
                shown.update(advance=1)
    rows += topic_rows(real, synthetic, config)
    return pa.Table.from_pylist(rows, schema=schema.METRICS), embedding_map(
        [real, *synthetic], seed
    )


TOPICS_REPORTED = 10  # the largest real topics get per-topic rows


def topic_rows(real, synthetic: list, config: EvaluateConfig) -> list[dict]:
    """Per topic (the largest real ones, every set placed in the real topic model): the share of
    posts with each lexical feature and each sentiment, all platforms together."""
    from mpsynth.metrics.lexical import COUNTED, lexical_features
    from mpsynth.metrics.sentiment import CLASSES

    labels, sizes = np.unique(real.topics[real.topics >= 0], return_counts=True)
    largest = labels[np.argsort(-sizes, kind="stable")[:TOPICS_REPORTED]]
    rows = []
    for data in [real, *synthetic]:
        if not data.texts:
            continue
        features = data._cached("lexical", lambda d=data: lexical_features(pa.array(d.texts)))
        classes = data.sentiment(config.sentiment)
        for topic in largest.tolist():
            mask = data.topics == topic
            if not mask.any():
                continue
            values = {f"share_with_{k}": (features[k][mask] > 0).mean() for k in COUNTED}
            values |= {f"share_{c}": (classes[mask] == i).mean() for i, c in enumerate(CLASSES)}
            rows += [
                {
                    "family": "by_topic",
                    "metric": metric,
                    "dataset": data.name,
                    "platform": schema.ALL_PLATFORMS,
                    "topic": topic,
                    "value": float(value),
                    "ci_low": float("nan"),
                    "ci_high": float("nan"),
                    "n": int(mask.sum()),
                }
                for metric, value in values.items()
            ]
    return rows


MAP_POINTS = 3_000  # per dataset


def embedding_map(sets: list, seed: int) -> pa.Table:
    """2-D coordinates for a picture of every set in one embedding space: PCA fitted on the real set
    (the first), every set projected onto it; at most MAP_POINTS posts per set."""
    rng = np.random.default_rng(seed)
    real = sets[0].embeddings
    mean = real.mean(axis=0)
    _, _, axes = np.linalg.svd(real - mean, full_matrices=False)
    columns: dict[str, list] = {"dataset": [], "platform": [], "x": [], "y": []}
    for data in sets:
        rows = np.arange(len(data.texts))
        if len(rows) > MAP_POINTS:
            rows = np.sort(rng.choice(rows, MAP_POINTS, replace=False))
        points = (data.embeddings[rows] - mean) @ axes[:2].T
        columns["dataset"] += [data.name] * len(rows)
        columns["platform"] += data.platforms[rows].tolist()
        columns["x"] += points[:, 0].tolist()
        columns["y"] += points[:, 1].tolist()
    return pa.table(columns)


def privacy_rows(samples: dict[str, pa.Table], examples: pa.Table | None) -> pa.Table:
    """Privacy metrics of every synthetic set, per platform and over all, against an index of the
    real sample plus every real post a prompt showed (so near copies of examples are always found)."""
    from mpsynth.metrics.compare import metric_row
    from mpsynth.metrics.privacy import RealCorpusIndex, privacy_flags

    real = samples[schema.REAL]
    ids, texts = real.column("id").to_pylist(), real.column("text").to_pylist()
    if examples is not None:
        known = set(ids)
        for post_id, text in zip(
            examples.column("id").to_pylist(), examples.column("text").to_pylist(), strict=True
        ):
            if post_id not in known:
                ids.append(post_id)
                texts.append(text)
    synthetic = {n: t for n, t in samples.items() if n != schema.REAL}
    held = samples.get(schema.REAL_HOLDOUT)
    # a minute or more at a million posts: progress over the posts indexed, then those checked
    indexed = len(ids) + (held.num_rows if held is not None else 0)
    with console.progress(
        "evaluate: privacy", indexed + sum(t.num_rows for t in synthetic.values()), "posts"
    ) as progress:
        index = RealCorpusIndex(
            ids, texts, real.column("author").to_pylist(), progress=progress.update
        )
        # a synthetic post that copies a held-out real post copies a real post all the same; the
        # holdout itself is checked against the reference alone
        held_index = (
            RealCorpusIndex(
                held.column("id").to_pylist(),
                held.column("text").to_pylist(),
                held.column("author").to_pylist(),
                progress=progress.update,
            )
            if held is not None
            else None
        )
        rows = []
        for name, table in synthetic.items():
            shown = table.column("example_ids").to_pylist()
            # datasets made elsewhere have no record of the examples their prompts showed
            flags = privacy_flags(
                index, table.column("text").to_pylist(), shown if any(shown) else None
            )
            if held_index is not None and name != schema.REAL_HOLDOUT:
                also = privacy_flags(held_index, table.column("text").to_pylist(), None)
                flags = {k: v | also[k] if k in also else v for k, v in flags.items()}
            progress.update(advance=table.num_rows)
            platforms = np.asarray(table.column("platform").to_pylist(), dtype=object)
            for platform in [*sorted(set(platforms.tolist())), schema.ALL_PLATFORMS]:
                mask = (
                    np.ones(len(platforms), bool)
                    if platform == schema.ALL_PLATFORMS
                    else platforms == platform
                )
                rows += [
                    metric_row("privacy", metric, name, platform, values[mask].mean(), mask.sum())
                    for metric, values in flags.items()
                ]
    return pa.Table.from_pylist(rows, schema=schema.METRICS)


DCR = "dcr_nearer_reference_share"


def dcr_rows(samples: dict[str, pa.Table], config: EvaluateConfig, seed: int) -> pa.Table:
    """The distance-to-closest-record test of every synthetic set, per platform and over all: the
    share of its posts nearer a sample of the reference (the real posts generation could see), of
    the holdout's size, than the holdout (0.5 is ideal), with a bootstrap interval over the posts.
    No rows without a holdout."""
    from mpsynth.metrics.compare import metric_row
    from mpsynth.metrics.privacy import nearer_reference
    from mpsynth.metrics.stats import bootstrap_mean_ci
    from mpsynth.stages.embed import embeddings_matrix

    if schema.REAL_HOLDOUT not in samples:
        return schema.METRICS.empty_table()
    rng = np.random.default_rng([seed, 31])

    def parts(table: pa.Table) -> dict[str, np.ndarray]:
        vectors = embeddings_matrix(table.column("embedding"))
        platforms = np.asarray(table.column("platform").to_pylist(), dtype=object)
        found = {p: vectors[platforms == p] for p in sorted(set(platforms.tolist()))}
        return {**found, schema.ALL_PLATFORMS: vectors}

    holdout = parts(samples[schema.REAL_HOLDOUT])
    # per platform, a reference sample of the holdout's size, the same for every set
    reference = {
        platform: pool[np.sort(rng.choice(len(pool), min(len(holdout[platform]), len(pool)),
                                          replace=False))]
        for platform, pool in parts(samples[schema.REAL]).items()
        if platform in holdout
    }  # fmt: skip
    rows = []
    for name, table in samples.items():
        if name in (schema.REAL, schema.REAL_HOLDOUT):
            continue
        if not any(table.column("example_ids").to_pylist()):
            continue  # made elsewhere: what its generator saw is unknown, the holdout included
        for platform, mine in parts(table).items():
            held = holdout.get(platform)
            if held is None or not len(held) or not len(mine):
                continue
            flags = nearer_reference(mine, reference[platform], held)
            ci = bootstrap_mean_ci(flags, config.bootstrap_samples, config.confidence, rng)
            rows.append(metric_row("privacy", DCR, name, platform, flags.mean(), len(flags), ci))
    return pa.Table.from_pylist(rows, schema=schema.METRICS)
