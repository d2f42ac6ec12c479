"""The run config (YAML, pydantic models: frozen, unknown keys rejected) and its sections.

`run` holds RunConfig, loading and --set overrides and each pipeline's stages; `sections` the
sections of the topic run's stages and Ray; `generation` the generators, providers, rate limits,
retries and prices; `labelled` the labelled run's section; `base` what every section shares;
`settings` overrides and one-line validation errors. The names below are the package's API.
"""

from __future__ import annotations

from mpsynth.config import settings
from mpsynth.config.generation import GenerateConfig, GeneratorConfig, PriceConfig
from mpsynth.config.run import (
    PIPELINES,
    STAGES,
    RunConfig,
    apply_overrides,
    build_config,
    load_config,
)
from mpsynth.config.sections import (
    STRATEGIES,
    ColumnMap,
    CompositionConfig,
    CopiesConfig,
    EmbedConfig,
    EmbedderConfig,
    EntityEnrichmentConfig,
    EvaluateConfig,
    HoldoutConfig,
    IngestConfig,
    InputSpec,
    LsaEmbedderConfig,
    NetworksConfig,
    OpenAIEmbedderConfig,
    PoolsConfig,
    PostprocessConfig,
    PromptsConfig,
    RayConfig,
    ReportConfig,
    SentenceTransformersEmbedderConfig,
    SentimentConfig,
    Strategy,
    StructureConfig,
    TopicsConfig,
    TransformersSentimentConfig,
    VaderSentimentConfig,
    VectorizerConfig,
)

__all__ = [
    "PIPELINES",
    "STAGES",
    "STRATEGIES",
    "ColumnMap",
    "CompositionConfig",
    "CopiesConfig",
    "EmbedConfig",
    "EmbedderConfig",
    "EntityEnrichmentConfig",
    "EvaluateConfig",
    "GenerateConfig",
    "GeneratorConfig",
    "HoldoutConfig",
    "IngestConfig",
    "InputSpec",
    "LsaEmbedderConfig",
    "NetworksConfig",
    "OpenAIEmbedderConfig",
    "PoolsConfig",
    "PostprocessConfig",
    "PriceConfig",
    "PromptsConfig",
    "RayConfig",
    "ReportConfig",
    "RunConfig",
    "SentenceTransformersEmbedderConfig",
    "SentimentConfig",
    "Strategy",
    "StructureConfig",
    "TopicsConfig",
    "TransformersSentimentConfig",
    "VaderSentimentConfig",
    "VectorizerConfig",
    "apply_overrides",
    "build_config",
    "load_config",
    "settings",
]
