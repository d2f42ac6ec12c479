"""The pipeline runner: the config's stages in order, each skipped when its inputs and config are
unchanged.

Which stages run, and which runner each uses, follows from the config's `pipeline` (PIPELINES in
mpsynth.stages, runners here). A stage's fingerprint hashes its own config, the seed, the mpsynth
version and the fingerprint of the stage before it, so a change anywhere upstream re-runs everything
downstream and nothing else.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth import __version__
from mpsynth.config import RunConfig
from mpsynth.config.run import PIPELINES
from mpsynth.core import console
from mpsynth.core.errors import ConfigError, InputError, StageError
from mpsynth.core.fingerprint import fingerprint
from mpsynth.core.locations import is_remote
from mpsynth.orchestration.plan import RAY_STAGES, RUNNERS, check_stage, stage_plan
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.rundir.directory import RunDirectory
from mpsynth.stages.generate import ledger_dir
from mpsynth.stages.ingest.normalise import check_inputs

log = logging.getLogger(__name__)


def preflight(config: RunConfig, until: str | None = None) -> None:
    """Every check that needs no work done: the run directory, inputs and their columns, prompt
    templates; API keys and prices only when the run goes as far as generating."""
    from mpsynth.generation.pricing import price_for
    from mpsynth.labelled.labels import label_mapping
    from mpsynth.stages.prompts.build import load_template

    stages = PIPELINES[config.pipeline]
    until = check_stage(config, until)
    check_run_dir(config.run_dir)
    labelled = config.pipeline == "labelled"
    for number, spec in enumerate(config.ingest.inputs):
        if labelled and spec.columns.label is None:
            raise ConfigError(f"ingest.inputs.{number}.columns.label: a labelled run needs labels")
    check_inputs(config.ingest, required=("label",) if labelled else ())
    for strategy in config.strategies():
        load_template(strategy, config.prompts)
    if labelled:
        label_mapping(config.labelled)
    if stages.index(until) < stages.index("generate"):
        return
    for number, generator in enumerate(config.generate.generators):
        env = getattr(generator.provider, "api_key_env", None)
        if env and not os.environ.get(env):
            raise ConfigError(
                f"generate.generators.{number}.provider.api_key_env: the environment variable "
                f"{env} is not set"
            )
        if (
            config.generate.budget_usd is not None
            and price_for(generator, config.generate.prices) is None
        ):
            raise ConfigError(
                f"generate.budget_usd needs a price for model {generator.provider.model!r}: "
                f"add generate.prices.{generator.provider.model}"
            )


Donors = Callable[[str, str], Path | None]
"""Where a finished copy of a stage lies: (stage, fingerprint) -> its folder in another run
directory, or None. A sweep's variations lend each other the stages they share."""


def run_pipeline(
    config: RunConfig,
    until: str | None = None,
    force: Iterable[str] = (),
    donors: Donors | None = None,
    cache_dir: Path | None = None,
    ledger_root: Path | None = None,
) -> dict[str, Any]:
    """Run the config's stages up to `until` (None: all of them), skipping those already current
    and adopting those a donor holds with the same fingerprint; return the manifest. `cache_dir`:
    the embedding cache's folder (default: $MPSYNTH_CACHE, else the run directory's);
    `ledger_root`: where the generators' ledgers live (default: the run directory)."""
    until = check_stage(config, until)
    force = set(force)
    preflight(config, until)  # before the run directory exists: a bad input leaves nothing behind
    run = RunDirectory.open(config.run_dir)
    with _claimed(run):
        return _run_stages(config, run, until, force, donors, cache_dir, ledger_root)


@contextmanager
def _claimed(run: RunDirectory) -> Iterator[None]:
    """The run directory held by this process, its log open; the log pushed at the end when the
    run directory is remote."""
    with run.claimed():
        console.open_run_log(run.root)
        try:
            yield
        finally:
            run.push_log()


def check_run_dir(run_dir: Path | str) -> None:
    if is_remote(run_dir):
        return  # a prefix on object storage is never a file in the way
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir: {run_dir} is a file, not a folder")


def stage_fingerprints(config: RunConfig, until: str | None = None) -> list[tuple[str, str]]:
    """Each stage up to `until` with its fingerprint: its own inputs, the mpsynth version and the
    fingerprint of the stage before it, so equal fingerprints mean equal work all the way up."""
    stages = stage_plan(config)
    names = [name for name, _, _ in stages]
    todo = stages[: names.index(check_stage(config, until)) + 1]
    upstream, fingerprints = "", []
    for stage, _, inputs in todo:
        upstream = fingerprint(
            {"stage": stage, "version": __version__, "inputs": inputs(config), "up": upstream}
        )
        fingerprints.append((stage, upstream))
    return fingerprints


def _run_stages(
    config: RunConfig,
    run: RunDirectory,
    until: str,
    force: set[str],
    donors: Donors | None = None,
    cache_dir: Path | None = None,
    ledger_root: Path | None = None,
) -> dict[str, Any]:
    run.initialise(config.to_yaml(), fingerprint(config.model_dump(mode="json")))
    ctx = StageContext(config, run, cache_dir, ledger_root, pipeline=run_pipeline)
    runners = {name: runner for name, runner, _ in stage_plan(config)}
    plan, stale = [], False
    for stage, stage_fingerprint in stage_fingerprints(config, until):
        # once a stage re-runs, everything after it re-runs too
        stale = stale or stage in force or not run.is_current(stage, stage_fingerprint)
        wanted = donors is not None and stale and stage not in force  # forced: really run it
        donor = donors(stage, stage_fingerprint) if wanted else None
        if donor is not None and not any(run_it for *_, run_it in plan):
            plan.append((stage, donor, stage_fingerprint, False))
            stale = False  # the donor's copy is this run's, as if it had run here
            continue
        plan.append((stage, runners[stage], stage_fingerprint, stale))
    needs_ray = any(run_it and stage in RAY_STAGES for stage, _, _, run_it in plan)
    with _maybe_ray(config, needs_ray):
        for stage, runner, stage_fingerprint, run_it in plan:
            if isinstance(runner, Path):
                _adopt(run, stage, stage_fingerprint, runner)
                continue
            if not run_it:
                log.info("%-11s up to date, skipped", stage)
                continue
            started = time.perf_counter()
            log.info("%-11s running", stage)
            with run.writing(stage) as out:
                rows = runner(ctx, out)
            run.record(stage, stage_fingerprint, started, rows)
            log.info("%-11s done in %.1fs %s", stage, time.perf_counter() - started, rows)
    return run.manifest()


def _adopt(run: RunDirectory, stage: str, stage_fingerprint: str, donor: Path) -> None:
    """The donor's finished stage as this run's own: its files hard-linked (a committed stage folder
    is never written again, only replaced), its manifest entry copied with where it came from."""
    started = time.perf_counter()
    with run.writing(stage) as out:
        shutil.copytree(donor, out, copy_function=_link, dirs_exist_ok=True)
    entry = RunDirectory(donor.parent).manifest()["stages"].get(stage, {})
    run.record(stage, stage_fingerprint, started, entry.get("rows", {}), reused_from=str(donor))
    log.info("%-11s reused from %s", stage, donor.parent.name)


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)


@contextmanager
def _maybe_ray(config: RunConfig, needed: bool) -> Iterator[None]:
    if not needed:
        yield
        return
    from mpsynth.distributed.session import ray_session

    with console.native_output_to_run_log(), ray_session(config.ray, lazy=True):
        yield


def estimate(config: RunConfig) -> list[dict]:
    """Run the cheap stages up to prompts (skipping current ones) and price the generation."""
    from mpsynth.generation.ledger import read_ledger, succeeded_ids
    from mpsynth.generation.pricing import estimate_generation
    from mpsynth.stages.generate import completion_cache
    from mpsynth.stages.replies import planned_rounds

    run_pipeline(config, until="prompts")
    run = RunDirectory.open(config.run_dir, pull=False)
    requests = pq.read_table(run.stage_dir("prompts") / "requests.parquet")
    ctx = StageContext(config, run)
    done = {}
    for g in config.generate.generators:
        # answered in this run's ledger, or by any run before it (the completion cache): free
        done[g.name] = succeeded_ids(read_ledger(ledger_dir(ctx, g.name)))
        cache = completion_cache(ctx, g)
        if cache is not None:
            done[g.name] |= set(cache.lookup(requests.column("request_id").to_pylist()))
    posts = pq.read_table(run.stage_dir("ingest") / "posts.parquet")
    structure = config.structure
    later = (
        planned_rounds(
            posts,
            requests,
            structure.replies,
            structure.interactions and structure.quotes,
            structure.interactions and structure.reposts,
        )
        if "structure" in PIPELINES[config.pipeline]
        else {}
    )
    return estimate_generation(
        requests,
        posts.select(["id", "text"]),
        config.generate.generators,
        config.generate.prices,
        done,
        later,
    )


def evaluate_files(
    config: RunConfig, synthetic: list[Path], synthetic_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Evaluate synthetic datasets made elsewhere (CSV / JSONL / Parquet with text and platform)
    against the config's real input: ingest, embed and topics as usual, the files through the same
    ingest checks into postprocess/, then evaluate and report. `synthetic_input` maps their columns
    (`{"columns": {"text": "body"}, "platform": "reddit"}`), as an ingest input does."""
    from mpsynth.config import IngestConfig, InputSpec
    from mpsynth.stages.ingest.normalise import ingest

    if not synthetic:
        raise StageError("give at least one synthetic dataset (--synthetic FILE ...)")
    names = [p.stem for p in synthetic]
    if len(set(names)) != len(names):
        raise StageError(f"synthetic datasets need distinct file names (got {names})")
    specs = [InputSpec(path=path, **(synthetic_input or {})) for path in synthetic]
    problems = []
    for spec in specs:  # every bad file at once, not one per attempt
        try:
            check_inputs(IngestConfig(inputs=[spec]))
        except InputError as error:
            problems.append(str(error))
    if problems:
        raise InputError(
            f"{len(problems)} of {len(specs)} synthetic datasets cannot be read:\n  "
            + "\n  ".join(problems)
        )
    check_run_dir(config.run_dir)
    check_inputs(config.ingest)
    run = RunDirectory.open(config.run_dir)
    with _claimed(run):
        # a held-out real sample gives each metric its ceiling here too (the DCR test needs to
        # know what the generator saw, so sets made elsewhere go without it)
        _run_stages(config, run, "holdout", set())
        ctx = StageContext(config, run)
        started = time.perf_counter()
        with run.writing("postprocess") as out:
            (out / "synthetic").mkdir()
            rows = {}
            for path, spec in zip(synthetic, specs, strict=True):
                result = ingest(IngestConfig(inputs=[spec]))
                # the sets' own accounts and times, if they have them, for the structure metrics
                posts = result.posts.select(["id", "platform", "text", "author", "timestamp"])
                posts = posts.append_column(
                    "example_ids",
                    pa.array([[] for _ in range(posts.num_rows)], pa.list_(pa.string())),
                )
                rows[path.stem] = write_table(posts, out / "synthetic" / f"{path.stem}.parquet")
                if result.quarantine.num_rows:
                    write_table(result.quarantine, out / f"quarantine-{path.stem}.parquet")
                    log.warning("%s: %d rows quarantined", path, result.quarantine.num_rows)
        files = [
            {"path": str(p), "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns}
            for p in synthetic
        ]
        run.record("postprocess", fingerprint({"external": files}), started, rows)
        shutil.rmtree(run.stage_dir("structure"), ignore_errors=True)  # an earlier run's sets
        with _maybe_ray(config, True):
            for stage in ("evaluate", "report"):
                started = time.perf_counter()
                with run.writing(stage) as out:
                    stage_rows = RUNNERS[stage](ctx, out)
                run.record(
                    stage, fingerprint({"external": files, "stage": stage}), started, stage_rows
                )
        return run.manifest()
