"""`mpsynth sweep`: one config run over a grid of settings, every distinct stage computed once.

Each variation is a run directory of its own (`<out>/variations/<key>/`, the key a hash of its
settings, so a changed grid keeps the variations it shares with the old one). Before a stage runs,
the variations already done are asked for a stage of the same fingerprint: the fingerprint covers
the stage's settings and, through the stage before it, everything upstream, so a finished copy is
exactly the work this variation would do. It is hard-linked into place instead: the topic model is
fitted once per distinct topic setting, not once per variation. Every variation reads and fills one
embedding cache (`<out>/cache/`).

Variations run one after another inside one Ray session, each stage spread over the cluster as a
plain run's is, and share one ledger per generator (`<out>/ledger/`: a ledger is keyed by request
id). With the grid's `together` (the default), every variation is first run up to its prompts and
the requests of all of them to a hosted model are sent at once through one governor per generator
(`generate_together`); each variation's generate stage then finds its answers in the ledger. The
sweep's `budget_usd` is one cap over every variation: the requests sent together run under what is
left of it, and each variation after them with `generate.budget_usd` set to what is left (the
ledgers counted before it starts), so generation stops request by request at the cap, as a run's
own budget does; a model without a price is refused before any work, and a sweep the cap stopped
ends in an error. A sweep is resumed by running it again: finished variations are up to date, a
crashed one continues where it stopped.

Outputs in `<out>/`: `variations.parquet` (settings, status, seconds, stages run and reused),
`metrics.parquet` (every metric of every variation, long), `sensitivity.parquet` and
`sensitivity_families.parquet` (mpsynth.report.sensitivity) and `sensitivity.html`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.config import RunConfig, load_config
from mpsynth.config.run import PIPELINES
from mpsynth.config.sweep import SweepGrid, load_grid, overrides_of
from mpsynth.core import console
from mpsynth.core.errors import ConfigError, MpsynthError, StageError
from mpsynth.core.fingerprint import fingerprint
from mpsynth.core.locations import is_remote
from mpsynth.orchestration.pipeline import Donors, preflight, run_pipeline
from mpsynth.rundir.context import write_table
from mpsynth.rundir.directory import RunDirectory

log = logging.getLogger(__name__)

SUMMARY = "sweep.json"

# The sweep's own columns (its tables' other columns are the metrics table's, described there).
COLUMNS = {
    "variation": "the variation: v01, v02, ... in the grid's order",
    "replicate": "the generation of the variation the row comes from (generate.replicates)",
    "run_dir": "the variation's run directory",
    "settings": "the variation's settings, as JSON: config key -> value",
    "status": "finished, failed: <why>, or not run: <why>",
    "seconds": "seconds of the stages this variation computed itself (adopted ones excluded), "
    "over every invocation of the sweep",
    "stages_ran": "stages this variation computed",
    "stages_reused": "stages it took, hard-linked, from another variation with the same fingerprint",
    "setting": "the config key varied",
    "reading": "gap to real (|synthetic - real|), gap to ideal, or value (the metric as it is)",
    "levels": "the setting's values compared, in the grid's order (JSON)",
    "level_means": "the metric's mean over the variations at each level (JSON)",
    "effect": "mean at the last level minus mean at the first (per family: mean |standardised|)",
    "effect_low": "lower end of the effect's 95% bootstrap interval",
    "effect_high": "upper end of the effect's 95% bootstrap interval",
    "standardised": "the effect over the metric's standard deviation across all variations",
    "standardised_low": "lower end of the standardised effect's interval",
    "standardised_high": "upper end of the standardised effect's interval",
    "moved": "whether the effect's interval leaves out zero",
    "by_chance": "the family's effect with the setting's values shuffled over the variations "
    "(200 shuffles): what chance alone gives",
    "metrics": "metrics of the family with an effect",
    "metrics_moved": "of those, metrics whose effect's interval leaves out zero",
}


def _write(table: pa.Table, path: Path) -> None:
    """A sweep table with every column described (a setting's column by its key)."""
    fields = []
    for column in table.schema:
        text = COLUMNS.get(column.name)
        if column.name.startswith("setting:"):
            text = f"the variation's value of {column.name.removeprefix('setting:')} (JSON)"
        if text is not None:
            column = column.with_metadata(
                {**(column.metadata or {}), b"description": text.encode()}
            )
        fields.append(column)
    write_table(table.cast(pa.schema(fields)), path)


@dataclass
class Variation:
    name: str  # v01, v02, ... in the grid's order
    settings: dict[str, Any]
    config: RunConfig
    status: str = "pending"
    seconds: float = 0.0
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return Path(self.config.run_dir)


def plan_sweep(
    config_path: str | Path,
    grid: SweepGrid,
    overrides: tuple[str, ...],
    out: Path,
    grid_path: str | Path = "the grid",
) -> list[Variation]:
    """Every variation's config, each checked now: a bad key or value fails before any work.
    Each value of the grid is checked alone first, so every bad one is named at once, as a line
    of the grid file."""
    problems = []
    for key, values in grid.grid.items():
        for value in values if isinstance(values, list) else [values.low, values.high]:
            try:
                load_config(config_path, [*overrides, *overrides_of({key: value})])
            except ConfigError as error:
                reason = str(error).split("\n", 1)[-1].strip()
                problems.append(f"grid.{key}: {json.dumps(value)}: {reason}")
    if problems:
        raise ConfigError(f"invalid {grid_path}:\n  " + "\n  ".join(problems))
    variations = []
    for number, settings in enumerate(grid.variations(), start=1):
        key = fingerprint(settings)[:12]
        run_dir = f"run_dir={json.dumps(str(out / 'variations' / key))}"
        try:
            config = load_config(config_path, [*overrides, *overrides_of(settings), run_dir])
        except ConfigError as error:
            raise ConfigError(f"grid variation {json.dumps(settings)}: {error}") from None
        variations.append(Variation(f"v{number:02d}", settings, config))
    return variations


def sweep_dir(config: RunConfig, out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    if is_remote(config.run_dir):
        raise ConfigError("a sweep works in a local folder: give one with --out")
    return Path(f"{str(config.run_dir).rstrip('/')}-sweep")


def donors_for(variation: Variation, others: list[Variation]) -> Donors:
    """Where another variation holds a finished stage of the same fingerprint."""

    def find(stage: str, stage_fingerprint: str) -> Path | None:
        for other in others:
            if other is variation or not (other.root / "manifest.json").is_file():
                continue
            if RunDirectory(other.root).is_current(stage, stage_fingerprint):
                return other.root / stage
        return None

    return find


def spent_usd(variations: list[Variation], root: Path) -> float:
    """What the sweep's answers have cost so far: its shared ledgers (`<root>/ledger/`) and any a
    variation holds of its own."""
    from mpsynth.generation.ledger import read_ledger

    total = 0.0
    for folder in [root, *(v.root for v in variations)]:
        for ledger in sorted((folder / "ledger").glob("*")):
            table = read_ledger(ledger)
            if table.num_rows:
                total += pc.sum(table.column("cost_usd")).as_py() or 0.0
    return total


def _sent_together(generator) -> bool:
    """A generator whose requests a sweep sends together: a hosted or local model answering live
    (the Markov stand-in and batch-mode generators run inside each variation)."""
    from mpsynth.generation.cache import UNCACHED_PROVIDERS

    return generator.provider.kind not in UNCACHED_PROVIDERS and generator.mode == "live"


def generate_together(variations: list[Variation], root: Path, budget_usd: float | None) -> None:
    """Every variation's generation requests to a hosted model sent at once: each variation is
    run up to its prompts, then each generator's requests of all of them (one request asked by
    two variations, once) go through one governor and one pool of workers into the sweep's
    ledger, which every variation reads; their generate stages then find every answer there."""
    from mpsynth.rundir.context import StageContext

    ready = [v for v in variations if any(map(_sent_together, v.config.generate.generators))]
    if not ready:
        return
    log.info("sweep: %d variations up to their prompts, then their requests together", len(ready))
    for variation in ready:
        try:
            run_pipeline(
                variation.config,
                until="prompts",
                donors=donors_for(variation, variations),
                cache_dir=root / "cache",
                ledger_root=root,
            )
        except MpsynthError as error:  # its own run below says so again
            log.warning("variation %s: %s", variation.name, str(error).splitlines()[0])
    # the first variation's context: its corpus, settings and the sweep's ledger and cache
    ctx = StageContext(
        ready[0].config, RunDirectory(ready[0].root), cache_dir=root / "cache", ledger_root=root
    )
    for generator, tables in _requests_by_generator(ready).values():
        left = None if budget_usd is None else budget_usd - spent_usd(variations, root)
        if left is not None and left <= 0:
            log.warning(
                "sweep: budget reached before %s's requests were sent together", generator.name
            )
            break
        _send_together(ctx, generator, tables, left)


def _requests_by_generator(ready: list[Variation]) -> dict[str, tuple[Any, list[pa.Table]]]:
    """Generator name -> (its settings in the first variation, each variation's requests to it);
    a variation whose generator of that name calls another endpoint sends its own."""
    groups: dict[str, tuple[Any, list[pa.Table]]] = {}
    for variation in ready:
        path = variation.root / "prompts" / "requests.parquet"
        if not path.is_file():  # its prompts failed: its own run says why
            continue
        requests = pq.read_table(path)
        for generator in filter(_sent_together, variation.config.generate.generators):
            first, tables = groups.setdefault(generator.name, (generator, []))
            if first.provider == generator.provider:
                tables.append(
                    requests.filter(pc.equal(requests.column("generator"), generator.name))
                )
    return groups


def _send_together(ctx, generator, tables: list[pa.Table], budget_usd: float | None) -> None:
    """One generator's requests of every variation, in turn and each once, through one governor
    into the sweep's ledger; the answers filed in the sweep's completion cache."""
    from mpsynth.distributed.generation import run_generator
    from mpsynth.generation.ledger import read_ledger
    from mpsynth.generation.pricing import run_price
    from mpsynth.providers import RealCorpus
    from mpsynth.stages.generate import file_answers, ledger_dir

    requests = _interleaved(tables)
    distinct = _first_of_each(requests)
    log.info(
        "sweep: %s: %d requests of %d variations (%d distinct) sent together",
        generator.name,
        requests.num_rows,
        len(tables),
        distinct.num_rows,
    )
    settings = ctx.config.generate
    # each variation brings its requests in flight, as it would alone; the one governor holds
    # them all to the provider's requests and tokens per minute
    rate = generator.rate.model_copy(
        update={"concurrency": generator.rate.concurrency * len(tables)}
    )
    directory = ledger_dir(ctx, generator.name)
    started = time.time()
    try:
        run_generator(
            generator.model_copy(update={"rate": rate}),
            distinct,
            directory,
            RealCorpus(  # read by the Markov stand-in alone, which is never sent together
                posts=ctx.reference().resolve(),
                assignments=ctx.path("topics", "assignments").resolve(),
            ),
            run_price(generator, settings.prices),
            budget_usd,
            ctx.config.ray,
            settings.flush_every,
            settings.flush_interval_s,
            settings.progress_interval_s,
            seed=ctx.config.draw_seed,
        )
    except MpsynthError as error:  # each variation's generate stage meets it and says so
        log.warning("sweep: %s: %s", generator.name, str(error).splitlines()[0])
    # filed for later runs, as a run's own generate stage files its answers
    file_answers(ctx, generator, distinct, read_ledger(directory), started)


def _interleaved(tables: list[pa.Table]) -> pa.Table:
    """The variations' requests taken in turn (one of each, then the next of each), so a budget
    or an interruption leaves every variation a share of the answers, not the first all of them."""
    import itertools

    offsets = list(itertools.accumulate([0, *(t.num_rows for t in tables)]))
    order = [
        offsets[t] + row
        for row in range(max(t.num_rows for t in tables))
        for t in range(len(tables))
        if row < tables[t].num_rows
    ]
    return pa.concat_tables(tables).take(order)


def _first_of_each(requests: pa.Table) -> pa.Table:
    """One row per request id (variations that ask the same thing ask it once)."""
    ids = requests.column("request_id").to_pylist()
    first = {request_id: i for i, request_id in reversed(list(enumerate(ids)))}
    return requests.take(sorted(first.values()))


def run_sweep(
    config_path: str | Path,
    grid_path: str | Path,
    overrides: tuple[str, ...] = (),
    out: str | Path | None = None,
) -> dict[str, Any]:
    """Run every variation (skipping what is done, adopting what another variation did), then
    gather their metrics and write the sensitivity analysis. Returns the sweep's summary."""
    grid = load_grid(grid_path)
    root = sweep_dir(load_config(config_path, overrides), out).resolve()
    variations = plan_sweep(config_path, grid, overrides, root, grid_path)
    for variation in variations:
        if grid.budget_usd is not None:  # a price for every model, before any work
            variation.config = _capped(variation.config, grid.budget_usd)
        preflight(variation.config)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sweep = RunDirectory(root)
    with sweep.exclusive():
        console.open_run_log(root)
        log.info("sweep: %d variations in %s", len(variations), root)
        with _ray(variations[0].config):
            if grid.together:
                generate_together(variations, root, grid.budget_usd)
            for number, variation in enumerate(variations, start=1):
                if grid.budget_usd is not None:
                    left = grid.budget_usd - spent_usd(variations, root)
                    if left <= 0:
                        log.warning("sweep budget reached: $%.2f spent", grid.budget_usd - left)
                        variation.status = "not run: sweep budget reached"
                        continue
                    variation.config = _capped(variation.config, left)
                log.info(
                    "variation %s (%d of %d): %s",
                    variation.name,
                    number,
                    len(variations),
                    ", ".join(f"{k}={json.dumps(v)}" for k, v in variation.settings.items()),
                )
                _run_variation(variation, donors_for(variation, variations), root)
                console.open_run_log(root)
        stopped = [v.name for v in variations if "budget" in v.status]
        finished = any(v.status == "finished" for v in variations)
        summary = (
            _gather(config_path, grid, variations, root, time.perf_counter() - started)
            if finished or not stopped
            else None
        )
    if grid.budget_usd is not None and stopped:
        raise StageError(
            f"the sweep's budget_usd=${grid.budget_usd:g} stopped {len(stopped)} of "
            f"{len(variations)} variations ({', '.join(stopped)}; "
            f"${spent_usd(variations, root):.4f} "
            f"spent); {'sensitivity.html reads the finished ones; ' if finished else ''}raise "
            "the budget and run the sweep again to finish the rest"
        )
    log.info("sweep report: %s", root / "sensitivity.html")
    return summary


def _capped(config: RunConfig, left: float) -> RunConfig:
    """The config with its generation budget no higher than what the sweep has left."""
    own = config.generate.budget_usd
    budget = left if own is None else min(own, left)
    generate = config.generate.model_copy(update={"budget_usd": budget})
    return config.model_copy(update={"generate": generate})


def _run_variation(variation: Variation, donors: Donors, root: Path) -> None:
    started = time.perf_counter()
    try:
        manifest = run_pipeline(
            variation.config, donors=donors, cache_dir=root / "cache", ledger_root=root
        )
    except MpsynthError as error:  # one setting's failure is a finding, not the sweep's end
        variation.status = f"failed: {str(error).splitlines()[0]}"
        log.warning("variation %s failed: %s", variation.name, error)
        manifest = RunDirectory(variation.root).manifest()
    else:
        variation.status = "finished"
    log.info("variation %s: %.1f s", variation.name, time.perf_counter() - started)
    _note_stages(variation, manifest)


def _note_stages(variation: Variation, manifest: dict[str, Any]) -> None:
    """Which stages this variation computed (and their seconds, whichever invocation ran them) and
    which it took from another."""
    variation.seconds = 0.0
    for stage, entry in manifest["stages"].items():
        (variation.reused if entry.get("reused_from") else variation.ran).append(stage)
        if not entry.get("reused_from"):
            variation.seconds += entry.get("seconds", 0.0)


@contextmanager
def _ray(config: RunConfig) -> Iterator[None]:
    """One Ray session for every variation (its own stages join it rather than start one each)."""
    from mpsynth.distributed.session import ray_session

    with console.native_output_to_run_log(), ray_session(config.ray, lazy=True):
        yield


def _gather(
    config_path: str | Path,
    grid: SweepGrid,
    variations: list[Variation],
    root: Path,
    wall_s: float,
) -> dict[str, Any]:
    from mpsynth.report.sensitivity import render_sensitivity, sensitivity_tables

    finished = [v for v in variations if v.status == "finished"]
    if not finished:
        raise StageError(f"no variation of the sweep finished; see {root / 'mpsynth.log'}")
    metrics = pa.concat_tables([_metrics_of(v) for v in finished], promote_options="default")
    _write(metrics, root / "metrics.parquet")
    records = [_record(v) for v in variations]
    table = pa.Table.from_pylist([{**r, "settings": json.dumps(r["settings"])} for r in records])
    _write(table, root / "variations.parquet")
    levels = {k: v if isinstance(v, list) else None for k, v in grid.grid.items()}
    by_metric, by_family = sensitivity_tables(
        metrics, {v.name: v.settings for v in finished}, levels
    )
    _write(by_metric, root / "sensitivity.parquet")
    _write(by_family, root / "sensitivity_families.parquet")
    stages = PIPELINES[finished[0].config.pipeline]
    previous = json.loads((root / SUMMARY).read_text()) if (root / SUMMARY).is_file() else {}
    invocations = [*previous.get("invocations", []), round(wall_s, 1)]  # a resumed sweep adds up
    summary = {
        "config": str(config_path),
        "grid": {k: v if isinstance(v, list) else v.model_dump() for k, v in grid.grid.items()},
        "variations": len(variations),
        "finished": len(finished),
        "failed": sum(v.status.startswith("failed") for v in variations),
        "stages": {
            s: {
                "ran": sum(s in v.ran for v in variations),
                "reused": sum(s in v.reused for v in variations),
            }
            for s in stages
        },
        "invocations": invocations,
        "wall_s": round(sum(invocations), 1),
        "one_by_one_s": round(sum(_full_cost(v) for v in finished), 1),
    }
    (root / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    page = render_sensitivity(summary, records, by_metric, by_family)
    (root / "sensitivity.html").write_text(page, encoding="utf-8")
    return summary


def _metrics_of(variation: Variation) -> pa.Table:
    """The variation's metric rows: every generation's where it drew several (each row with its
    `replicate`), else its evaluation's."""
    every = variation.root / "replicates" / "metrics.parquet"
    if variation.config.generate.replicates > 1 and every.is_file():
        metrics = pq.read_table(every)
    else:
        metrics = pq.read_table(variation.root / "evaluate" / "metrics.parquet")
    metrics = metrics.append_column("variation", pa.array([variation.name] * metrics.num_rows))
    for key, value in variation.settings.items():
        metrics = metrics.append_column(
            f"setting:{key}", pa.array([json.dumps(value)] * metrics.num_rows)
        )
    return metrics


def _full_cost(variation: Variation) -> float:
    """What the variation would have cost run on its own: every stage at the seconds it took
    where it was computed (a reused stage at its donor's)."""
    total = 0.0
    for stage, entry in RunDirectory(variation.root).manifest()["stages"].items():
        while entry.get("reused_from"):  # a donor may itself have adopted the stage
            donor = RunDirectory(Path(entry["reused_from"]).parent).manifest()["stages"]
            if stage not in donor:
                break
            entry = donor[stage]
        total += entry.get("seconds", 0.0)
    return total


def _record(variation: Variation) -> dict[str, Any]:
    """A variation as variations.parquet and the page show it."""
    return {
        "variation": variation.name,
        "run_dir": str(variation.root),
        "settings": variation.settings,
        "status": variation.status,
        "seconds": variation.seconds,
        "stages_ran": variation.ran,
        "stages_reused": variation.reused,
    }
