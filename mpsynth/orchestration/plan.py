"""The plan of a run: which stages its pipeline has, the runner of each, and what each stage's output
depends on besides the stage before it (its fingerprint's inputs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpsynth.config import RunConfig
from mpsynth.config.run import PIPELINES
from mpsynth.core.errors import StageError
from mpsynth.core.locations import is_remote
from mpsynth.report.runner import run_report
from mpsynth.rundir.context import StageContext
from mpsynth.stages.drops import dropped_posts
from mpsynth.stages.embed import run_embed
from mpsynth.stages.evaluate.runner import run_evaluate
from mpsynth.stages.generate import run_generate
from mpsynth.stages.holdout import run_holdout
from mpsynth.stages.ingest.normalise import expand_input
from mpsynth.stages.ingest.runner import run_ingest
from mpsynth.stages.pools import run_pools
from mpsynth.stages.postprocess.runner import run_postprocess
from mpsynth.stages.prompts.runner import run_prompts
from mpsynth.stages.replicates import run_replicates
from mpsynth.stages.structure import run_structure
from mpsynth.stages.topics import run_topics


def _input_files(config: RunConfig) -> list[dict[str, Any]]:
    files = []
    for spec in config.ingest.inputs:
        for file, _ in expand_input(spec):
            stat = file.stat()  # a remote file's local copy carries the remote's mtime
            name = spec.path if is_remote(spec.path) else file
            files.append({"path": str(name), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return files


def _template_texts(config: RunConfig) -> dict[str, str]:
    return {
        s: p.read_text(encoding="utf-8") for s, p in config.prompts.templates.items() if p.is_file()
    }


def _generation(config: RunConfig) -> dict[str, Any]:
    """The generation settings that shape a set: all but how many replicates run beside it, where
    answers are looked up (a cached answer is the answer) and the budget (which decides whether
    the stage finishes, never what it holds)."""
    return config.generate.model_dump(
        mode="json", exclude={"replicates", "cache", "cache_max_gb", "budget_usd"}
    )


# What each stage's output depends on, besides the stage before it.
STAGE_INPUTS: dict[str, Callable[[RunConfig], Any]] = {
    "ingest": lambda c: {"ingest": c.ingest.model_dump(mode="json"), "files": _input_files(c)},
    "embed": lambda c: {
        # where vectors are looked up changes none of them
        "embed": c.embed.model_dump(mode="json", exclude={"cache", "cache_max_gb"}),
        "seed": c.seed,
    },
    "topics": lambda c: {"topics": c.topics.model_dump(mode="json"), "seed": c.seed},
    "holdout": lambda c: {
        "holdout": c.holdout.model_dump(mode="json"),
        "n_posts": c.generate.n_posts,  # the holdout is as large as a synthetic set
        "composition": c.pools.composition.model_dump(mode="json"),
        "include_outliers": c.pools.include_outliers,
        "seed": c.seed,
    },
    "pools": lambda c: {
        "pools": c.pools.model_dump(mode="json"),
        "n_posts": c.generate.n_posts,
        "posts_per_platform": c.prompts.posts_per_platform,
        "seed": c.seed,
        "replicate": c.generate.replicate,  # a replicate draws anew from pools on
    },
    "prompts": lambda c: {
        "prompts": c.prompts.model_dump(mode="json"),
        "templates": _template_texts(c),
        "generators": [g.model_dump(mode="json") for g in c.generate.generators],
    },
    "generate": lambda c: {"generate": _generation(c)},
    "postprocess": lambda c: {
        "postprocess": c.postprocess.model_dump(mode="json"),
        "prompts": c.prompts.model_dump(mode="json"),  # deficit rounds build prompts
        "generate": _generation(c),  # ... and generate them
    },
    "structure": lambda c: {
        "structure": c.structure.model_dump(mode="json"),
        "seed": c.seed,
        # replies are prompted and generated here
        "prompts": c.prompts.model_dump(mode="json"),
        "templates": _template_texts(c),
        "examples_per_prompt": c.pools.examples_per_prompt,
        "generate": _generation(c),
        **dropped_posts(c.run_dir),  # the posts a reviewer dropped are left out here
    },
    "evaluate": lambda c: {"evaluate": c.evaluate.model_dump(mode="json"), "seed": c.seed},
    "replicates": lambda c: {"replicates": c.generate.replicates},
    "report": lambda c: {"report": c.report.model_dump(mode="json")},
}


Runner = Callable[[StageContext, Path], dict[str, Any]]

# Each stage's runner: reads upstream outputs from the run directory, computes, writes its folder.
RUNNERS: dict[str, Runner] = {
    "ingest": run_ingest,
    "embed": run_embed,
    "topics": run_topics,
    "holdout": run_holdout,
    "pools": run_pools,
    "prompts": run_prompts,
    "generate": run_generate,
    "postprocess": run_postprocess,
    "structure": run_structure,
    "evaluate": run_evaluate,
    "replicates": run_replicates,
    "report": run_report,
}


def _labelled_runners() -> tuple[dict[str, Runner], dict[str, Callable[[RunConfig], Any]]]:
    """A labelled run adds labels, cues and utility, and has its own pools and postprocess. Imported
    here, not at the top: a topic run never loads the labelled track (scikit-learn, SHAP)."""
    from mpsynth.labelled.cues import run_cues
    from mpsynth.labelled.labels import run_labels
    from mpsynth.labelled.pools import run_class_pools
    from mpsynth.labelled.postprocess import run_labelled_postprocess
    from mpsynth.labelled.utility import run_utility

    runners = {
        **RUNNERS,
        "labels": run_labels,
        "cues": run_cues,
        "pools": run_class_pools,
        "postprocess": run_labelled_postprocess,
        "utility": run_utility,
    }
    inputs = {
        **STAGE_INPUTS,
        "labels": lambda c: {
            "labels": c.labelled.model_dump(
                mode="json", include={"separator", "multi_label", "mapping", "classes", "split"}
            ),
            "seed": c.seed,
        },
        "cues": lambda c: {"cues": c.labelled.cues.model_dump(mode="json"), "seed": c.seed},
        "pools": lambda c: {
            "labelled": c.labelled.model_dump(
                mode="json", include={"strategies", "targets", "min_combination"}
            ),
            "examples_per_prompt": c.pools.examples_per_prompt,
            "prompt_cues": c.labelled.cues.prompt_cues,
            "n_posts": c.generate.n_posts,
            "posts_per_request": c.prompts.posts_per_platform,
            "seed": c.seed,
        },
        "prompts": lambda c: {
            **STAGE_INPUTS["prompts"](c),
            "descriptions": c.labelled.descriptions,
        },
        "postprocess": lambda c: {
            **STAGE_INPUTS["postprocess"](c),
            "filter_threshold": c.labelled.filter_threshold,
            "calibrate": c.labelled.calibrate,
            # deficit rounds build class pools and prompts
            "max_rounds": c.pools.composition.max_rounds,
            "examples_per_prompt": c.pools.examples_per_prompt,
            "prompt_cues": c.labelled.cues.prompt_cues,
            "descriptions": c.labelled.descriptions,
            **dropped_posts(c.run_dir),  # a labelled run's final sets are written here
        },
        "utility": lambda c: {
            "utility": c.labelled.utility.model_dump(mode="json"),
            "seed": c.seed,
        },
    }
    return runners, inputs


def stage_plan(config: RunConfig) -> list[tuple[str, Runner, Callable[[RunConfig], Any]]]:
    """The config's stages in order, each with its runner and what its output depends on."""
    runners, inputs = (RUNNERS, STAGE_INPUTS) if config.pipeline == "mptm" else _labelled_runners()
    return [(name, runners[name], inputs[name]) for name in PIPELINES[config.pipeline]]


def check_stage(config: RunConfig, stage: str | None) -> str:
    """`stage`, or the pipeline's last, checked against the config's pipeline."""
    stages = PIPELINES[config.pipeline]
    if stage is None:
        return stages[-1]
    if stage not in stages:
        raise StageError(
            f"stage {stage!r} is not part of the {config.pipeline} pipeline; its stages are "
            f"{', '.join(stages)}"
        )
    return stage


RAY_STAGES = {"embed", "topics", "generate", "postprocess", "utility", "evaluate", "replicates"}
