"""The Arrow schemas shared by every stage: one place names every column that crosses a stage."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("s", tz="UTC")
# the platform structure a post can carry besides its text: who wrote it, when, and what it answers
LINK_FIELDS = ("reply_to", "thread_id", "quote_of")
ENGAGEMENT = ("likes", "shares", "comments", "views", "votes", "followers")
POST_KINDS = ("original", "repost", "quote", "reply", "comment")
REPOST = "repost"
ANSWER_KINDS = ("reply", "comment")  # post kinds that answer another post
FOLLOWERS = "followers"  # an account's count, repeated on each of its posts

POSTS = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("platform", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("timestamp", TIMESTAMP),
        pa.field("author", pa.string()),
        pa.field("label", pa.string()),
        pa.field("split", pa.string()),
        pa.field("lang", pa.string()),  # ISO 639-1 code where the input declares one
        pa.field("reply_to", pa.string()),
        pa.field("thread_id", pa.string()),
        pa.field("quote_of", pa.string()),
        pa.field("post_kind", pa.string()),
        *(pa.field(name, pa.int64()) for name in ENGAGEMENT),
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
        pa.field("label", pa.string()),  # labelled runs: the class asked for
        pa.field("cues", pa.list_(pa.string()), nullable=False),  # labelled runs: cue words
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
        pa.field("label", pa.string()),
        pa.field("cues", pa.list_(pa.string()), nullable=False),
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
        pa.field("label", pa.string()),  # labelled runs: the class the post was asked for
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
        pa.field("topic_name", pa.string()),  # "12: chanel, flap, classic, fake"
        pa.field("value", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("n", pa.int64(), nullable=False),
    ]
)

METRIC_VALUES = ("value", "ci_low", "ci_high")

REAL = "real"
# the classes of a multi-label post in one label, sorted: "anger+sadness"
LABEL_JOIN = "+"
# the real posts drawn down to the synthetic sets' size per platform: the network baseline (a
# graph's nodes, density and co-sharing pairs grow with its posts)
REAL_SUBSAMPLE = "real-subsample"
REAL_HOLDOUT = "real-holdout"  # real posts held out of generation, measured as a set: the ceiling
ALL_PLATFORMS = "all"


# What every column of every output table means, stored in the Parquet schema's field metadata
# (key b"description") so that a file read anywhere explains itself.
DESCRIPTIONS: dict[str, str] = {
    "id": "post id: the input's id column, else FILE:LINE; for synthetic posts REQUEST:INDEX",
    "platform": "platform name, normalised (twitter, reddit, youtube, facebook, ...)",
    "text": "post text, exactly as read or generated",
    "timestamp": "when the post was written, UTC (real: the input's timestamp parsed; null when "
    "missing or unreadable; synthetic: drawn from the real posts of its platform and topic)",
    "author": "the account that wrote the post (real: the input's author as given; synthetic: a "
    "pseudonymous account of the set's population)",
    "reply_to": "id of the post this one answers (the input's column, where it has one)",
    "thread_id": "id of the thread (conversation) the post belongs to",
    "quote_of": "id of the post this one quotes or shares",
    "post_kind": "the kind of post: original, repost (a retweet, share or forward of quote_of), "
    "quote, reply or comment; null where the input does not say",
    "likes": "likes the post received (the input's count; null where it gives none)",
    "shares": "reposts of the post: retweets, shares, forwards (the input's count)",
    "comments": "comments or replies the post received (the input's count)",
    "views": "views or impressions of the post (the input's count)",
    "votes": "the post's net votes, which may be negative (Reddit's score: upvotes minus "
    "downvotes)",
    "followers": "followers of the post's author when it was collected (the input's count)",
    "actor": "the cross-platform actor the account belongs to (its own name when it is on one "
    "platform only)",
    "persona": "the persona (a cluster of at least k real accounts) the synthetic account follows",
    "label": "the input's label, as given (labelled runs: the label after the run's rules)",
    "split": "the input's split, as given (labelled runs: seed, reserve, validation or test)",
    "lang": "language of the post (ISO 639-1; the input's, primary subtag only; null: none given)",
    "judge": "the classifier that scored the cell: tfidf (the cues' family) or embeddings "
    "(logistic regression on sentence embeddings)",
    "source_file": "input file the row was read from",
    "source_row": "line of the row in its file (1-based, header counted; Parquet: row number)",
    "reason": "why the row was set aside",
    "embedding": "unit-length embedding vector of the post (the run's embedder)",
    "topic": "topic number in the real topic model (-1: outlier; null: none or all topics)",
    "topic_name": "the topic by its number and top keywords (c-TF-IDF), e.g. '12: chanel, flap, "
    "classic, fake'; null where topic is",
    "topic_similarity": "cosine similarity of the post to its topic's centroid",
    "size": "posts assigned to the topic",
    "keywords": "the topic's top words (c-TF-IDF)",
    "platform_counts": "posts of the topic per platform",
    "representative_ids": "ids of the posts closest to the topic's centroid",
    "pool_id": "few-shot pool the request draws its examples from",
    "strategy": "prompting strategy: mptm (one topic, several platforms), per_platform, "
    "shap_guided (class examples and cue words) or naive (the class name alone)",
    "cues": "cue words the prompt showed for its class (SHAP and TF-IDF, from the real seed)",
    "target_platforms": "platforms the request asks posts for",
    "example_ids": "ids of the real posts the prompt showed as examples",
    "seed": "seed of the pool draw or the generation request",
    "messages": "chat messages sent to the model",
    "posts_per_platform": "posts asked for each target platform",
    "provider": "generation backend kind (markov, openai, anthropic, gemini, vllm)",
    "model": "model name as sent to the provider",
    "params_json": "sampling parameters sent with the request (JSON)",
    "request_id": "hash of everything that shapes the answer: provider, model, URL, params, messages, seed",
    "generator": "generator name from the config",
    "status": "ok, or failed after every retry",
    "finish_reason": "why the model stopped: stop, length (truncated), refusal, ...",
    "prompt_tokens": "prompt tokens, as the provider counted them",
    "completion_tokens": "completion tokens, as the provider counted them",
    "error": "the last error, for a failed request",
    "latency_s": "seconds from the first attempt to the answer",
    "attempts": "calls made, retries and the repair retry included",
    "repaired": "true when the first answer was unusable and a repair retry was asked for",
    "cost_usd": "dollars spent on the request at the configured prices",
    "finished_at": "unix time the request finished",
    "raw": "the model output that could not be used",
    "family": "metric family: lexical, sentiment, similarity, topics, linguistic, privacy, ...",
    "metric": "metric name within its family",
    "dataset": "real, or the name of a synthetic dataset (GENERATOR-STRATEGY); real-subsample: "
    "the real posts drawn down to the synthetic sets' size per platform (network metrics only)",
    "value": "the metric's (utility: the measure's) value (null when it cannot be computed)",
    "ci_low": "lower bound of the bootstrap confidence interval (null when none)",
    "ci_high": "upper bound of the bootstrap confidence interval (null when none)",
    "n": "posts the value is computed on",
    # the replicates stage's tables: every generation's metrics, and their spread
    "replicate": "the generation the row comes from (1: the run directory's own sets)",
    "replicates": "generations with a value of the metric",
    "mean": "the metric's mean over the generations",
    "mean_low": "lower end of the mean's 95% t-interval over generations (null with one)",
    "mean_high": "upper end of the mean's 95% t-interval over generations (null with one)",
    "sd": "the metric's standard deviation over generations (null with one)",
    "min": "the lowest value over generations",
    "max": "the highest value over generations",
    "by_construction": "true where a synthetic set matches the real posts by construction (the "
    "structure stage copies posts per account and times from the real accounts): no evidence",
    "kind": "calibration: hashtags, mentions, urls or emojis",
    "action": "calibration: added or removed",
    "entity": "calibration: the hashtag, mention, URL or emoji added or removed",
    "target": "composition: accepted synthetic posts wanted in the cell (platform x topic)",
    "real": "composition: real posts in the cell",
    "hashtags": "hashtags in the post (twitter-text's rules; mpsynth.metrics.extraction)",
    "cashtags": "cashtags ($TSLA) in the post",
    "hashtags_found": "the post's hashtags as written (the network graphs' items)",
    "mentions_found": "the post's @mentions as written",
    "urls_found": "the post's URLs as written",
    "mentions": "@mentions in the post (the platform's handle rule)",
    "urls": "URLs in the post, with or without a scheme (bare domains on a known TLD)",
    "emojis": "emojis in the post",
    "chars": "characters in the post",
    "words": "whitespace-separated words in the post",
    "path": "file the row was read from",
    "added": "posts added to the real seed (0: the seed alone)",
    "repeat": "repeat number: which seeded draw of the added posts",
    "train_posts": "posts the classifier trained on",
    "macro_f1": "macro-F1 on the real test split",
    "f1": "F1 on the real test split (cells: per class, in the order of the run's classes)",
    "predictions": "predicted class index for every test post, in test order (multi-label: "
    "a bitmask of the predicted classes, bit c for class c)",
    "micro_f1": "micro-F1 on the real test split: every (post, class) decision pooled",
    "jaccard": "Jaccard accuracy on the real test split: per post |true and predicted classes| / "
    "|true or predicted classes|, averaged",
    "measure": "macro_f1, micro_f1, jaccard (the task's whole-set measures; the last two in "
    "multi-label runs), or f1 (one class's, named in class)",
    "seconds": "seconds the cell took (fit and predict)",
    "class": "class the F1 is for (null: a measure over every class)",
    "repeat_sd": "standard deviation of the F1 over repeats",
    "repeat_min": "lowest F1 over repeats",
    "repeat_max": "highest F1 over repeats",
    "repeats": "repeats averaged",
    "word": "cue word (a token of the classifier's vocabulary)",
    "rank": "the word's rank among its class's cues (1: strongest)",
    "score": "cue score: the mean of its SHAP and TF-IDF-differential scores, each over the class's best",
    "shap": "mean SHAP value toward the class over the class's seed posts",
    "tfidf_diff": "the class's mean TF-IDF of the word minus the other classes'",
    "source": "which ranking put the word among the class's top: shap, tfidf, both or combined",
    "account": "a real account (the input's author) the persona is made of",
    "posts": "posts the account wrote in the real input",
    "item_a": "graph drawing: one end of the edge (a #hashtag, a domain or an @mention)",
    "item_b": "graph drawing: the other end of the edge",
    "platform_a": "graph drawing: the platform item_a was used on",
    "platform_b": "graph drawing: the platform item_b was used on",
    "weight": "graph drawing: posts that used both items (1 for a link between platforms)",
    "link": "graph drawing: true when the edge joins the same item on two platforms",
    "curve": "structure curve: posts_per_account (share of accounts writing at least `point` "
    "posts) or hour_of_day (share of posts in hour `point`, UTC)",
    "point": "structure curve: where the curve is read (posts, or hour of the day)",
    "share": "structure curve: its value at the point",
    "x": "first coordinate of the 2-D map (PCA of the embeddings, fitted on the real posts)",
    "y": "second coordinate of the 2-D map",
}


def values_of(table: pa.Table, name: str) -> list:
    """A column's values as a list, or None for every row where the table has no such column."""
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [None] * table.num_rows


def described(table: pa.Table) -> pa.Table:
    """The table with each column's description in its field metadata (existing metadata kept)."""
    fields = []
    for field in table.schema:
        text = DESCRIPTIONS.get(field.name)
        if text is None or (field.metadata and b"description" in field.metadata):
            fields.append(field)
            continue
        fields.append(
            field.with_metadata({**(field.metadata or {}), b"description": text.encode()})
        )
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def nan_as_null(table: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """A value that cannot be computed is missing (null), not NaN, so JSON and every reader agree."""
    return _replace(table, columns, lambda c: pc.if_else(pc.is_nan(c), None, c))


def null_as_nan(table: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """The other way, for numeric code (plots, tables) that treats a missing value as NaN."""
    return _replace(table, columns, lambda c: pc.fill_null(c, float("nan")))


def _replace(table: pa.Table, columns: tuple[str, ...], change) -> pa.Table:
    for name in columns:
        position = table.schema.get_field_index(name)
        table = table.set_column(position, table.schema.field(name), change(table[name]))
    return table
