"""The config of a labelled run (`pipeline: labelled`): classes, splits, cues, generation targets and
the utility protocol."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from mpsynth.config.base import Section, listed_once

LabelStrategy = Literal["shap_guided", "naive"]
LABEL_STRATEGIES: tuple[LabelStrategy, ...] = ("shap_guided", "naive")


class SplitConfig(Section):
    """Where the seed, reserve, validation and test posts of a labelled run come from."""

    mode: Literal["auto", "column", "random"] = Field(
        default="auto",
        description="column: the input's split column; random: a seeded stratified split; "
        "auto: the column when every post has one, else random",
    )
    values: dict[str, Literal["train", "validation", "test"]] = Field(
        default_factory=dict,
        description="input split value -> role, on top of train/val/valid/validation/dev/test",
    )
    validation_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.2
    seed_size: Annotated[int, Field(ge=10)] | None = Field(
        default=1000,
        description="training posts that form the real seed (stratified); the rest of the "
        "training split is the reserve of 'more real posts' (None: all of it, no reserve)",
    )


class CuesConfig(Section):
    """The classifier trained on the real seed and the cue words explained from it."""

    classifiers: Annotated[list[Literal["logistic", "xgboost"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["logistic", "xgboost"]
    )
    top_k: Annotated[int, Field(ge=1, le=200)] = Field(
        default=15, description="cue words kept per class"
    )
    prompt_cues: Annotated[int, Field(ge=1, le=200)] = Field(
        default=10, description="cue words shown in each SHAP-guided prompt"
    )
    max_features: Annotated[int, Field(ge=100)] = 20_000
    min_df: Annotated[int, Field(ge=1)] = 2
    shap_sample: Annotated[int, Field(ge=10)] = Field(
        default=2000, description="training posts explained with SHAP (a stratified sample)"
    )


class UtilityConfig(Section):
    """Train on the real seed plus added posts, test on the real test split."""

    added: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)] = Field(
        default_factory=lambda: [250, 500, 1000, 1500, 2000]
    )
    repeats: Annotated[int, Field(ge=1)] = Field(
        default=5, description="seeds per cell (different draws of the added posts)"
    )
    bootstrap_samples: Annotated[int, Field(ge=0)] = 1000
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    judges: Annotated[list[Literal["tfidf", "embeddings"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["tfidf", "embeddings"],
        description="classifiers the grid trains: tfidf (the kind the cues came from) and "
        "embeddings (logistic regression on sentence embeddings in evaluate.embedder's space, "
        "a judge of another family than the one that picked the cues)",
    )


class LabelledConfig(Section):
    """A labelled run (pipeline: labelled): classes (one per post, or several), splits, cues,
    generation targets and the utility protocol."""

    @property
    def is_multi_label(self) -> bool:
        return self.multi_label if self.multi_label is not None else self.separator is not None

    separator: str | None = Field(
        default=None, description="separator of a multi-label column (GoEmotions: ';')"
    )
    multi_label: bool | None = Field(
        default=None,
        description="keep every class of a post (one-vs-rest classifiers, pools per class "
        "combination, Jaccard / micro / macro F1); None: multi-label when a separator is set; "
        "false: a post whose labels map to several classes is left out",
    )
    min_combination: Annotated[int, Field(ge=1)] = Field(
        default=10,
        description="multi-label runs: a class combination gets pools and prompts of its own "
        "when the seed holds at least this many posts of it",
    )
    mapping: str | dict[str, str] = Field(
        default_factory=dict,
        description="input label -> class (a packaged mapping by name, e.g. goemotions_ekman); "
        "labels left out are kept as they are",
    )
    classes: list[str] | None = Field(
        default=None, description="keep only these classes (None: every class found)"
    )
    descriptions: dict[str, str] = Field(
        default_factory=dict,
        description="class -> how prompts name it (OAG: overtly aggressive); default the class",
    )
    strategies: Annotated[list[LabelStrategy], Field(min_length=1), AfterValidator(listed_once)] = (
        Field(default_factory=lambda: list(LABEL_STRATEGIES))
    )
    targets: Literal["balance", "proportional", "equal"] | dict[str, int] = Field(
        default="balance",
        description="posts per class and strategy: balance (every class up to the seed's "
        "majority first, the rest spread evenly), proportional, equal, or counts per class",
    )
    filter_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        default=None,
        description="keep a generated post only when the seed classifier gives its class at "
        "least this probability (None: no filter)",
    )
    calibrate: bool = Field(
        default=False,
        description="also write each set calibrated class by class (<set>-calibrated): each "
        "class's share of posts with hashtags, mentions, URLs and emojis per platform brought "
        "to the seed posts' of that class; the calibrated sets join the utility grid",
    )
    split: SplitConfig = SplitConfig()
    cues: CuesConfig = CuesConfig()
    utility: UtilityConfig = UtilityConfig()
