"""The run config: every section together, which stages each pipeline has, YAML loading and --set
overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from mpsynth.config import settings
from mpsynth.config.base import Section
from mpsynth.config.generation import (
    GenerateConfig,
)
from mpsynth.config.labelled import LabelledConfig
from mpsynth.config.sections import (
    EmbedConfig,
    EvaluateConfig,
    HoldoutConfig,
    IngestConfig,
    Location,
    Pipeline,
    PoolsConfig,
    PostprocessConfig,
    PromptsConfig,
    RayConfig,
    ReportConfig,
    Strategy,
    StructureConfig,
    TopicsConfig,
)
from mpsynth.core.errors import ConfigError


class RunConfig(Section):
    run_dir: Location = Field(
        description="a local folder, or a URI (s3://bucket/runs/name) worked on through a local mirror"
    )
    seed: int = 0
    pipeline: Pipeline = Field(
        default="mptm",
        description="mptm: topic-based multi-platform generation; labelled: SHAP-guided labelled "
        "posts judged by a classifier trained on them",
    )
    ingest: IngestConfig
    embed: EmbedConfig = EmbedConfig()
    topics: TopicsConfig = TopicsConfig()
    holdout: HoldoutConfig = HoldoutConfig()
    pools: PoolsConfig = PoolsConfig()
    prompts: PromptsConfig = PromptsConfig()
    generate: GenerateConfig = GenerateConfig()
    postprocess: PostprocessConfig = PostprocessConfig()
    structure: StructureConfig = StructureConfig()
    labelled: LabelledConfig = LabelledConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    report: ReportConfig = ReportConfig()
    ray: RayConfig = RayConfig()

    def strategies(self) -> list[Strategy]:
        """The prompting strategies this run's pipeline uses."""
        return list(
            self.labelled.strategies if self.pipeline == "labelled" else self.pools.strategies
        )

    @model_validator(mode="after")
    def _replicates_where_supported(self) -> RunConfig:
        if self.pipeline == "labelled" and self.generate.replicates > 1:
            raise ValueError(
                "generate.replicates: a labelled run repeats its classifier comparisons "
                "(labelled.utility.repeats); replicates > 1 is for the mptm pipeline"
            )
        return self

    @property
    def draw_seed(self) -> int:
        """The seed of what a generation draws (pools, prompts, answers, accounts, replies): the
        run's seed for the first generation, one derived from it for each further replicate;
        everything before pools draws with `seed` alone, so replicates share it."""
        if self.generate.replicate == 0:
            return self.seed
        state = np.random.SeedSequence([self.seed, self.generate.replicate]).generate_state(1)
        return int(state[0] >> 1)

    def to_yaml(self) -> str:
        """Every setting, as loading it again reads it: an input's column map keeps only the
        columns the config named (a named column must exist; a default one may be absent)."""
        raw = self.model_dump(mode="json")
        for spec, dumped in zip(self.ingest.inputs, raw["ingest"]["inputs"], strict=True):
            dumped["columns"] = spec.columns.model_dump(mode="json", exclude_unset=True)
        return yaml.safe_dump(raw, sort_keys=False)


def _defaults() -> dict[str, Any]:
    """Every setting's default, as plain data (for overrides that reach into absent sections)."""
    minimal = {"run_dir": ".", "ingest": {"inputs": [{"path": "."}]}}
    return RunConfig.model_validate(minimal).model_dump(mode="json")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`--set` overrides applied to a raw config mapping (see mpsynth.config.settings)."""
    return settings.apply_overrides(raw, overrides, _defaults)


def build_config(raw: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"invalid {source}:\n  {settings.describe(error, RunConfig)}") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    path = Path(path)
    raw = settings.read_mapping(path, "config")
    return build_config(apply_overrides(raw, list(overrides)), source=str(path))


PIPELINES: dict[str, tuple[str, ...]] = {
    "mptm": (
        "ingest",
        "embed",
        "topics",
        "holdout",
        "pools",
        "prompts",
        "generate",
        "postprocess",
        "structure",
        "evaluate",
        "replicates",
        "report",
    ),
    "labelled": (
        "ingest",
        "labels",
        "embed",
        "topics",
        "cues",
        "pools",
        "prompts",
        "generate",
        "postprocess",
        "utility",
        "evaluate",
        "report",
    ),
}


# every stage name, in pipeline order (one CLI subcommand each)
STAGES: tuple[str, ...] = tuple(
    dict.fromkeys(name for stages in PIPELINES.values() for name in stages)
)
