"""The run config's sections, one per stage (ingest to report) and Ray: pydantic models, frozen,
unknown keys rejected. Generation's settings are in mpsynth.config.generation, the labelled run's
in mpsynth.config.labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from mpsynth.config.base import Section, listed_once
from mpsynth.config.labelled import LabelStrategy

TopicStrategy = Literal["mptm", "per_platform"]
STRATEGIES: tuple[TopicStrategy, ...] = ("mptm", "per_platform")
Strategy = TopicStrategy | LabelStrategy
Pipeline = Literal["mptm", "labelled"]


class ColumnMap(Section):
    """Which input column holds each field; None means the input has no such column."""

    text: str = "text"
    platform: str | None = "platform"
    id: str | None = "id"
    timestamp: str | None = "timestamp"
    author: str | None = "author"
    label: str | None = "label"
    split: str | None = "split"
    lang: str | None = Field(
        default="lang", description="language code of the post ('en'; 'en-US' is kept as 'en')"
    )
    reply_to: str | None = Field(default="reply_to", description="id of the post answered")
    thread_id: str | None = Field(default="thread_id", description="id of the thread")
    quote_of: str | None = Field(default="quote_of", description="id of the post quoted or shared")
    post_kind: str | None = Field(
        default="post_kind",
        description="the kind of post: original, repost (retweet, share, forward), quote, reply, "
        "comment, as each platform names them; a yes/no column (is_forward) marks reposts",
    )
    likes: str | None = Field(default=None, description="likes (favourites, reactions)")
    shares: str | None = Field(default=None, description="reposts of the post (retweets, forwards)")
    comments: str | None = Field(default=None, description="comments or replies the post received")
    views: str | None = Field(default=None, description="views or impressions")
    votes: str | None = Field(
        default=None, description="net votes, may be negative (Reddit's score: upvotes - downvotes)"
    )
    followers: str | None = Field(default=None, description="followers of the post's author")


def _location(value: Any) -> Any:
    """A remote URI (s3://, gs://, ...) stays a string; anything else is a local path."""
    from mpsynth.core.locations import is_remote

    if isinstance(value, str) and is_remote(value):
        return value
    return Path(value) if isinstance(value, str) else value


Location = Annotated[Path | str, BeforeValidator(_location)]


class InputSpec(Section):
    path: Location = Field(description="a file or folder, or a file's URI (s3://bucket/posts.csv)")
    format: Literal["auto", "csv", "jsonl", "parquet", "arrow"] = Field(
        default="auto",
        description="auto: by the suffix (.csv, .jsonl, .parquet, .arrow: an Arrow stream as "
        "`datasets` saves it)",
    )
    dataset_config: str | None = Field(
        default=None,
        description="a Hugging Face dataset folder's config to read (its README's `configs`); "
        "None: the default one, or the only one",
    )
    platform: str | None = Field(
        default=None, description="a fixed platform for every row (the platform column is ignored)"
    )
    columns: ColumnMap = ColumnMap()
    bundled_sample: str | None = Field(
        default=None,
        description="a sample of this input bundled with mpsynth, named when the input is missing",
    )
    dayfirst: bool | None = Field(
        default=None,
        description="how dates like 11/08/2017 read: true day first, false month first; "
        "None: as the file's unambiguous dates prove (month first, with a warning, without any)",
    )
    license: str | None = Field(
        default=None,
        description="the input's licence (an SPDX id: CC-BY-4.0), for `mpsynth publish`; None: "
        "each row's, from a `license` column where the file has one",
    )


class IngestConfig(Section):
    inputs: Annotated[list[InputSpec], Field(min_length=1)]
    platform_aliases: dict[str, str] = Field(
        default_factory=dict, description="extra spellings -> platform, on top of the built-in ones"
    )
    max_text_chars: Annotated[int, Field(ge=1)] = Field(
        default=100_000, description="longer posts are quarantined (no platform allows more)"
    )


class LsaEmbedderConfig(Section):
    """TF-IDF + truncated SVD fitted on the real corpus, L2-normalised."""

    kind: Literal["lsa"] = "lsa"
    dimensions: Annotated[int, Field(ge=2, le=4096)] = 256
    max_features: Annotated[int, Field(ge=100)] = 50_000
    min_df: Annotated[int, Field(ge=1)] = 2
    fit_sample: Annotated[int, Field(ge=100)] = 200_000


class SentenceTransformersEmbedderConfig(Section):
    """A sentence-transformers model: all-MiniLM-L6-v2 (the default) comes installed with mpsynth
    and is verified by hash; any other by local path (a multilingual one for non-English data,
    e.g. a saved copy of paraphrase-multilingual-MiniLM-L12-v2). Nothing is downloaded.
    backend: torch (CPU or CUDA), or the same model exported to ONNX and run by ONNX Runtime on
    CPU, `onnx-int8` with int8 weights (about 3x PyTorch on CPU with max_seq_length 128)."""

    kind: Literal["sentence-transformers"] = "sentence-transformers"
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "fp16", "bf16"] = "fp16"  # applied on CUDA only
    batch_size: Annotated[int, Field(ge=1)] = 128
    max_seq_length: Annotated[int, Field(ge=8)] | None = None


class OpenAIEmbedderConfig(Section):
    """OpenAI (or any OpenAI-compatible server's) embeddings endpoint."""

    kind: Literal["openai"] = "openai"
    model: str = "text-embedding-3-large"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    batch_size: Annotated[int, Field(ge=1, le=2048)] = 256
    max_retries: Annotated[int, Field(ge=0)] = 6
    timeout_s: Annotated[float, Field(gt=0)] = 60.0


EmbedderConfig = Annotated[
    LsaEmbedderConfig | SentenceTransformersEmbedderConfig | OpenAIEmbedderConfig,
    Field(discriminator="kind"),
]


class EmbedConfig(Section):
    embedder: EmbedderConfig = LsaEmbedderConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_kind(cls, data: Any) -> Any:
        """An embedder given without `kind` is the default (lsa), as when the section is absent."""
        embedder = data.get("embedder") if isinstance(data, dict) else None
        if isinstance(embedder, dict) and "kind" not in embedder:
            return {**data, "embedder": {"kind": "lsa", **embedder}}
        return data

    batch_size: Annotated[int, Field(ge=1)] = 2048
    actors: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="None: one per GPU when the cluster has GPUs, else one per CPU"
    )
    gpus_per_actor: Annotated[float, Field(ge=0.0)] | None = Field(
        default=None, description="None: 1 for sentence-transformers on a cluster with GPUs, else 0"
    )
    cache: bool = Field(
        default=True,
        description="file every vector by embedder and text, so no text is encoded twice (the "
        "evaluation, re-runs and sweeps look them up); under the run directory, or $MPSYNTH_CACHE "
        "when set (shared by every run that sets it)",
    )
    cache_max_gb: Annotated[float, Field(gt=0.0)] = Field(
        default=20.0, description="the embedding cache's size limit; the oldest parts go first"
    )


class VectorizerConfig(Section):
    """The bag of words behind each topic's keywords (c-TF-IDF)."""

    stop_words: str | None = Field(
        default="en", description="a language code with a spaCy stop-word list (en, nl, de, ...)"
    )
    ngram_range: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (1, 1)
    min_df: Annotated[int, Field(ge=1)] = 1

    @field_validator("stop_words")
    @classmethod
    def _known_language(cls, value: str | None) -> str | None:
        if value is None:
            return value
        import spacy.util

        try:
            spacy.util.get_lang_class(value)
        except ImportError:
            raise ValueError(f"no spaCy language {value!r} (try en, nl, de, fr, es, ...)") from None
        return value


class TopicsConfig(Section):
    backend: Literal["cpu", "gpu"] = "cpu"
    fit_sample_per_platform: Annotated[int, Field(ge=10)] = 25_000
    outlier_threshold: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.25
    n_neighbors: Annotated[int, Field(ge=2)] = 15
    n_components: Annotated[int, Field(ge=2)] = 5
    min_dist: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    min_cluster_size: Annotated[int, Field(ge=2)] = 15
    min_samples: Annotated[int, Field(ge=1)] | None = None
    vectorizer: VectorizerConfig = VectorizerConfig()
    top_n_words: Annotated[int, Field(ge=1, le=50)] = 10
    representative_posts: Annotated[int, Field(ge=1, le=50)] = 3
    assign_batch_size: Annotated[int, Field(ge=1)] = 8192


class CompositionConfig(Section):
    """How many accepted posts each platform x topic cell gets (per-platform sets: each platform)."""

    enabled: bool = Field(
        default=True,
        description="cells follow targets and deficit rounds fill what postprocessing dropped "
        "(false: requests per topic in proportion to its size, equal per platform)",
    )
    platforms: Literal["real", "equal"] | dict[str, Annotated[float, Field(ge=0)]] = Field(
        default="real",
        description="each platform's share of n_posts: real (as in the real posts), equal, or "
        "{platform: weight}; within a platform, topics follow its real posts",
    )
    max_rounds: Annotated[int, Field(ge=0, le=20)] = Field(
        default=3, description="deficit rounds after postprocessing (0: report the shortfall only)"
    )


class EntityEnrichmentConfig(Section):
    """Pools enriched with posts that mention entities of one frequency band of the real corpus
    (the bands the entity metrics report), to test whether how well a band's entities are
    replicated depends on how often the prompts show them."""

    band: Literal["top", "middle", "bottom"] = Field(
        description="the real entities' frequency band: the 20 most frequent, the 20 around the "
        "median rank, or the 20 least frequent"
    )
    share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.3,
        description="share of each pool's examples that must mention an entity of the band (as "
        "far as the pool's topic and platform hold such posts)",
    )
    ner_model: str = Field(
        default="en_core_web_sm", description="the spaCy pipeline that finds the entities"
    )


class PoolsConfig(Section):
    strategies: Annotated[list[TopicStrategy], Field(min_length=1), AfterValidator(listed_once)] = (
        Field(default_factory=lambda: list(STRATEGIES))
    )
    examples_per_prompt: Annotated[int, Field(ge=1, le=100)] = 9
    include_outliers: bool = False
    composition: CompositionConfig = CompositionConfig()
    entity_enrichment: EntityEnrichmentConfig | None = Field(
        default=None, description="enrich pools with posts mentioning entities of one band"
    )


class HoldoutConfig(Section):
    """Real posts held out of everything that shapes a synthetic set, then measured as one: each
    metric's ceiling on this corpus at the synthetic sets' size."""

    share: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=0.2,
        description="at most this share of each platform's posts is held out (as many as a "
        "synthetic set has there, where the corpus allows); 0: none",
    )


class PromptsConfig(Section):
    posts_per_platform: Annotated[int, Field(ge=1, le=50)] = Field(
        default=3, description="posts asked for each target platform (labelled runs: per request)"
    )
    templates: dict[Strategy | Literal["reply", "quote"], Path] = Field(
        default_factory=dict,
        description="strategy (or reply, quote: the structure stage's replies and quotes) -> "
        "template file replacing the packaged one",
    )
    privacy_guard: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="pseudonymise handles, e-mails, phone numbers and URLs in few-shot examples "
        "(auto: for hosted providers, openai / anthropic / gemini, not markov or vllm)",
    )
    phone_region: str = Field(
        default="US", description="region for phone numbers written without a country code"
    )


class CopiesConfig(Section):
    """Which copies the copy filter drops after generation (the evaluation's measures)."""

    exact_copies: bool = Field(default=True, description="the exact text of any real post")
    near_copies_of_examples: bool = Field(
        default=True, description="shingle Jaccard >= 0.8 with an example its prompt showed"
    )
    near_copies_of_corpus: bool = Field(
        default=True, description="shingle Jaccard >= 0.8 with any real post"
    )
    near_duplicates: bool = Field(
        default=True, description="shingle Jaccard >= 0.8 with an earlier post of the same set"
    )


class PostprocessConfig(Section):
    copies: CopiesConfig = CopiesConfig()
    calibrate: bool = Field(
        default=True,
        description="also write each set calibrated (<set>-calibrated): every platform's share "
        "of posts with hashtags, mentions, URLs and emojis brought to the real share",
    )


class VaderSentimentConfig(Section):
    kind: Literal["vader"] = "vader"


class TransformersSentimentConfig(Section):
    """A sequence-classification model whose labels read negative / neutral / positive, by hub name
    or local path (e.g. cardiffnlp/twitter-roberta-base-sentiment-latest)."""

    kind: Literal["transformers"] = "transformers"
    model: str
    batch_size: Annotated[int, Field(ge=1)] = 64
    max_length: Annotated[int, Field(ge=8)] = 128
    device: Literal["auto", "cpu", "cuda"] = "auto"
    languages: list[str] | None = Field(
        default=None,
        description="language codes the model covers (e.g. [en, nl, de] for a multilingual "
        "Twitter model); None: every language it is used for",
    )


SentimentConfig = Annotated[
    VaderSentimentConfig | TransformersSentimentConfig, Field(discriminator="kind")
]


class StructureConfig(Section):
    """Accounts, actors and times for the synthetic sets, drawn from the real posts' structure (on
    platforms whose input has authors and timestamps; nothing is invented where it has none)."""

    accounts: bool = Field(
        default=True, description="pseudonymous accounts, each following a persona of real accounts"
    )
    persona_min_accounts: Annotated[int, Field(ge=2)] = Field(
        default=5, description="k: a persona is a cluster of at least k real accounts"
    )
    max_personas_per_platform: Annotated[int, Field(ge=1)] = 200
    cross_platform_actors: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        default=None,
        description="share of actors with an account on several platforms (None: the real share, "
        "authors whose name appears on several platforms)",
    )
    times: bool = Field(default=True, description="timestamps drawn from the persona's real times")
    time_jitter_minutes: Annotated[float, Field(ge=0.0)] = 30.0
    replies: bool = Field(
        default=True,
        description="where the real posts answer one another (a reply_to column), the same share "
        "of synthetic posts are replies, written with their parent post in the prompt",
    )
    max_reply_depth: Annotated[int, Field(ge=1, le=50)] = Field(
        default=5, description="deepest reply written (a reply to a reply ... this many levels)"
    )
    reply_retries: Annotated[int, Field(ge=0, le=20)] = Field(
        default=3,
        description="a reply refused by the parser or the copy filter is asked for again this many "
        "times; what is still missing keeps its own post and is counted in the summary",
    )
    interactions: bool = Field(
        default=True,
        description="where the real posts carry kinds (post_kind) and engagement counts, the "
        "synthetic posts get kinds and counts drawn from the real ones",
    )
    quotes: bool = Field(
        default=True,
        description="where the real posts include quotes, the same share of synthetic posts are "
        "quotes, written like replies with the quoted post in the prompt (one request each)",
    )
    reposts: bool = Field(
        default=True,
        description="where the real posts include reposts, reposts are added at the real share: a "
        "synthetic account resharing a synthetic post of the topic (no model is asked)",
    )


class NetworksConfig(Section):
    """The structure and network metrics (accounts, time, co-sharing and cross-platform graphs)."""

    enabled: bool = True
    window_seconds: Annotated[int, Field(ge=1)] = Field(
        default=60,
        description="two accounts sharing the same URL, domain, hashtag, reshared post, reply "
        "target or (near-)identical text within this many seconds are a coordinated pair (the "
        "coordination-network-toolkit's default)",
    )
    similarity: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.8,
        description="co_similar_tweet: two posts within the window whose token sets have at least "
        "this Jaccard similarity are near-identical (the coordination-network-toolkit's default)",
    )
    betweenness_pivots: Annotated[int, Field(ge=1)] = Field(
        default=64,
        description="source nodes of the sampled betweenness (exact below this many nodes): its "
        "cost is this many breadth-first searches per graph",
    )
    bootstrap_samples: Annotated[int, Field(ge=0)] = Field(
        default=10,
        description="resamples of each set's posts (with replacement, graphs rebuilt) behind the "
        "graph metrics' intervals (the value +- 1.96 resampled standard deviations); the real "
        "reference set, the yardstick, is not resampled; 0: no intervals",
    )
    linkage_ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.5,
        description="account linkage: a synthetic account whose nearest real account is closer "
        "than this ratio times the second nearest is linked to it",
    )


class EvaluateConfig(Section):
    embedder: EmbedderConfig | None = Field(
        default_factory=SentenceTransformersEmbedderConfig,
        description="the space of the embedding similarity and the map: a pretrained model "
        "(default all-MiniLM-L6-v2, packaged); null: the run's own embed.embedder",
    )
    bootstrap_samples: Annotated[int, Field(ge=0)] = 200
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    sample_per_platform: Annotated[int, Field(ge=1)] | None = Field(
        default=20_000, description="posts per platform and dataset evaluated (None: all of them)"
    )
    similarity_thresholds: tuple[Annotated[float, Field(ge=-1.0, le=1.0)], ...] = (0.6, 0.7, 0.8)
    detectability_sample: Annotated[int, Field(ge=10)] = 5_000
    mauve: bool = Field(
        default=True,
        description="MAUVE between the real posts and each set in the measure space, where the "
        "optional mauve-text package (GPL-3.0: pip install 'mpsynth[mauve]') is installed",
    )
    linguistic_seed: int = 0
    sentiment: SentimentConfig = VaderSentimentConfig()
    sentiment_by_language: dict[str, SentimentConfig] = Field(
        default_factory=dict,
        description="language code -> the sentiment backend for posts in that language (nl: a "
        "Dutch or multilingual model); posts in other languages use evaluate.sentiment",
    )
    detect_language: bool = Field(
        default=True,
        description="give posts without a declared lang one from a language identifier "
        "(py3langid, its bundled model), to choose their sentiment backend and check coverage",
    )
    ner_model: str | None = Field(
        default="en_core_web_sm",
        description="a spaCy pipeline name or path for the entity metrics; en_core_web_sm (the "
        "default) is installed with mpsynth and verified by hash; None: left out",
    )
    networks: NetworksConfig = NetworksConfig()

    @field_validator("embedder")
    @classmethod
    def _pretrained(cls, value: Any) -> Any:
        if value is not None and value.kind == "lsa":
            raise ValueError(
                "LSA is fitted by the embed stage: set null to use the run's LSA space"
            )
        return value


class ReportConfig(Section):
    title: str = "mpsynth fidelity report"
    viewer_posts: Annotated[int, Field(ge=1)] = Field(
        default=5_000,
        description="posts of each set (and of the real posts) viewer.html carries; a larger set "
        "is shown through a seeded sample of this many",
    )


RAY_WORK_STAGES = ("embed", "topics", "generate", "utility", "evaluate")  # postprocess: as generate


class RayConfig(Section):
    address: str | None = Field(default=None, description="None starts a local session")
    num_cpus: Annotated[int, Field(ge=1)] | None = None
    actor_num_cpus: Annotated[float, Field(gt=0.0)] = 0.5
    local_rows: Annotated[int, Field(ge=0)] = Field(
        default=20_000,
        description="a Ray Data pass over fewer rows than this (asking no GPU) runs in the driver: "
        "on a small input a pool of actors, each importing its libraries and loading its model, "
        "costs more than the work; 0: always Ray Data",
    )
    start_attempts: Annotated[int, Field(ge=1)] = Field(
        default=2,
        description="tries at starting a local Ray session: Ray gives its node 30 s to come up, "
        "which a loaded machine can miss",
    )
    stage_resources: dict[str, dict[str, Annotated[float, Field(gt=0.0)]]] = Field(
        default_factory=dict,
        description="per stage, the custom Ray resources each of its actors and tasks asks for, "
        "so the stage lands on the node type that declares them (cluster.yaml: gpu_worker, "
        "cpu_worker)",
    )

    @field_validator("stage_resources")
    @classmethod
    def _known_stages(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for stage, resources in value.items():
            if stage not in RAY_WORK_STAGES:
                raise ValueError(
                    f"{stage!r} runs no Ray work; stages that do: {', '.join(RAY_WORK_STAGES)}"
                )
            for name in resources:
                if name in ("CPU", "GPU", "memory", "object_store_memory"):
                    raise ValueError(
                        f"{stage}.{name}: set CPUs and GPUs with ray.actor_num_cpus and the "
                        "stage's own gpus_per_actor; stage_resources is for custom resources"
                    )
        return value

    def resources_for(self, stage: str) -> dict[str, float]:
        return dict(self.stage_resources.get(stage, {}))
