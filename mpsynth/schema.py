"""The Arrow schemas shared by every stage: one place names every column that crosses a stage."""

from __future__ import annotations

import pyarrow as pa

POSTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("platform", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("timestamp", pa.string()),
        pa.field("author", pa.string()),
        pa.field("label", pa.string()),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("text", pa.string()),
    ]
)


def embeddings_schema(dimensions: int) -> pa.Schema:
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dimensions), nullable=False),
        ]
    )


TOPIC_ASSIGNMENTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("topic", pa.int64(), nullable=False),  # -1: outlier
        pa.field("topic_similarity", pa.float32()),
    ]
)

TOPICS = pa.schema(
    [
        pa.field("topic", pa.int64(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("keywords", pa.list_(pa.string())),
        pa.field("platform_counts", pa.map_(pa.string(), pa.int64())),
        pa.field("representative_ids", pa.list_(pa.string())),
    ]
)

SAMPLE_POOLS = pa.schema(
    [
        pa.field("pool_id", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),  # mptm | per_platform
        pa.field("topic", pa.int64()),  # null for per-platform pools
        pa.field("target_platforms", pa.list_(pa.string()), nullable=False),
        pa.field("example_ids", pa.list_(pa.string()), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
    ]
)

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])

GENERATION_REQUESTS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("pool_id", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("topic", pa.int64()),
        pa.field("target_platforms", pa.list_(pa.string()), nullable=False),
        pa.field("posts_per_platform", pa.int64(), nullable=False),
        pa.field("example_ids", pa.list_(pa.string()), nullable=False),
        pa.field("messages", pa.list_(MESSAGE), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("params_json", pa.string(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
    ]
)

COMPLETIONS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # ok | failed
        pa.field("text", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("latency_s", pa.float64()),
        pa.field("attempts", pa.int64(), nullable=False),
        pa.field("repaired", pa.bool_(), nullable=False),  # a repair retry was needed
        pa.field("cost_usd", pa.float64()),
        pa.field("finished_at", pa.float64(), nullable=False),  # unix time
    ]
)

GENERATED_POSTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("platform", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("topic", pa.int64()),
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("provider", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("example_ids", pa.list_(pa.string()), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
    ]
)

REJECTED_OUTPUTS = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)

METRICS = pa.schema(
    [
        pa.field("family", pa.string(), nullable=False),  # lexical, sentiment, topics, ...
        pa.field("metric", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),  # "real" or a synthetic set's name
        pa.field("platform", pa.string(), nullable=False),  # a platform, or "all"
        pa.field("topic", pa.int64()),  # null: over all topics
        pa.field("value", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("n", pa.int64(), nullable=False),
    ]
)

REAL = "real"
ALL_PLATFORMS = "all"
