"""The `mpsynth` command: a thin layer over mpsynth.orchestration."""

from __future__ import annotations

import logging
import os
import sys

import click

from mpsynth.config import load_config
from mpsynth.config.run import STAGES
from mpsynth.core.errors import MpsynthError

log = logging.getLogger("mpsynth")


def _run(config_path: str, overrides: tuple[str, ...], until: str | None, force: set[str]) -> None:
    from mpsynth.orchestration.pipeline import run_pipeline

    config = load_config(config_path, overrides)
    run_pipeline(config, until=until, force=force)
    run_dir = str(config.run_dir).rstrip("/")
    log.info("run directory: %s", run_dir)
    if until in (None, "report"):
        log.info("report: %s/report/report.html", run_dir)


_config = click.argument("config", type=click.Path(dir_okay=False))
_overrides = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a config setting, e.g. --set generate.n_posts=200 (repeatable)",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", is_flag=True, help="show every library's log lines too (Ray, BERTopic)"
)
def cli(verbose: bool) -> None:
    """Synthetic multi-platform social-media datasets from real posts, with fidelity reports."""
    from mpsynth.core import console

    console.setup(verbose)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # nothing reports home unless asked


@cli.command()
@_config
@_overrides
@click.option("--force", is_flag=True, help="re-run every stage, even those up to date")
def run(config: str, overrides: tuple[str, ...], force: bool) -> None:
    """Run the whole pipeline (stages whose inputs and config are unchanged are skipped)."""
    _run(config, overrides, None, set(STAGES) if force else set())


@cli.command(name="estimate")
@_config
@_overrides
def estimate_command(config: str, overrides: tuple[str, ...]) -> None:
    """Print requests, tokens and dollars per generator before anything is generated."""
    from mpsynth.orchestration.pipeline import estimate

    rows = estimate(load_config(config, overrides))
    click.echo(
        f"{'generator':<16}{'model':<26}{'requests':>9}{'to run':>8}{'prompt tok':>12}"
        f"{'exp. out tok':>13}{'max out tok':>12}{'exp. $':>10}{'max $':>10}"
    )
    for row in rows:
        money = [
            f"{row[k]:>10.4f}" if row[k] is not None else f"{'no price':>10}"
            for k in ("expected_usd", "max_usd")
        ]
        click.echo(
            f"{row['generator']:<16}{row['model']:<26}{row['requests']:>9,}{row['to_run']:>8,}"
            f"{row['prompt_tokens']:>12,}{row['expected_completion_tokens']:>13,}"
            f"{row['max_completion_tokens']:>12,}{money[0]}{money[1]}"
        )
    later = [
        f"{r['generator']} {r['structure_requests']:,}" for r in rows if r.get("structure_requests")
    ]
    if later:
        click.echo(
            "of those, made later by the structure stage (replies and quotes, at most one per "
            f"post; reposts ask nothing): {', '.join(later)}"
        )
    if any(row["expected_usd"] is None for row in rows):
        click.echo("no price for some models: set generate.prices.<model> (per million tokens)")


@cli.command()
@_config
@click.option(
    "--grid",
    "grid",
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML file: the settings to vary (grid:), and optionally sample:, seed:, budget_usd:, "
    "together:",
)
@_overrides
@click.option(
    "--out", type=click.Path(file_okay=False), help="the sweep's folder (default: RUN_DIR-sweep)"
)
def sweep(config: str, grid: str, overrides: tuple[str, ...], out: str | None) -> None:
    """Run CONFIG over a grid of settings, each distinct stage once, and rank which settings move
    which metrics (sensitivity.html). Run it again to resume."""
    from mpsynth.orchestration.sweep import run_sweep

    summary = run_sweep(config, grid, overrides, out)
    log.info(
        "%d of %d variations finished; topics fitted %d time(s); %.0f s (one by one: %.0f s)",
        summary["finished"],
        summary["variations"],
        summary["stages"]["topics"]["ran"],
        summary["wall_s"],
        summary["one_by_one_s"],
    )


@cli.command()
@click.argument("configs", nargs=-1, type=click.Path(dir_okay=False))
def prepare(configs: tuple[str, ...]) -> None:
    """Do once what a first run would otherwise spend a minute on, and keep it: compile
    umap-learn's functions, and export the ONNX model of each ONNX embedder CONFIGS name
    (`make install` runs it for configs/demo.yaml)."""
    from mpsynth.orchestration.prepare import prepare as prepare_install

    prepare_install([load_config(path) for path in configs])


def _stage_command(stage: str) -> click.Command:
    @_config
    @_overrides
    @click.option("--force", is_flag=True, help=f"re-run {stage} even if it is up to date")
    def command(config: str, overrides: tuple[str, ...], force: bool) -> None:
        _run(config, overrides, stage, {stage} if force else set())

    command.__doc__ = f"Run the pipeline up to and including the {stage} stage."
    return click.command(name=stage)(command)


for _stage in STAGES:
    if _stage != "evaluate":
        cli.add_command(_stage_command(_stage))


@cli.command(name="evaluate")
@click.argument("config", type=click.Path(dir_okay=False), required=False)
@click.argument("more_synthetic", nargs=-1, type=click.Path(exists=False))
@_overrides
@click.option("--force", is_flag=True, help="re-run evaluate even if it is up to date")
@click.option("--real", type=click.Path(), help="real posts to compare against (file or folder)")
@click.option(
    "--synthetic",
    "synthetic",
    multiple=True,
    type=click.Path(),
    help="a synthetic dataset (repeatable)",
)
@click.option(
    "--synthetic-column",
    "synthetic_columns",
    multiple=True,
    metavar="FIELD=COLUMN",
    help="the synthetic files' column for a field, e.g. text=body (repeatable)",
)
@click.option(
    "--synthetic-platform", help="one platform for every synthetic row (no platform column)"
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="run directory for --real/--synthetic"
)
def evaluate_command(
    config: str | None,
    more_synthetic: tuple[str, ...],
    overrides: tuple[str, ...],
    force: bool,
    real: str | None,
    synthetic: tuple[str, ...],
    synthetic_columns: tuple[str, ...],
    synthetic_platform: str | None,
    out: str | None,
) -> None:
    """Run the pipeline up to evaluate (mpsynth evaluate CONFIG), or compare datasets made elsewhere:
    mpsynth evaluate --real R --synthetic A B C [--out DIR] [CONFIG for the other settings]."""
    from pathlib import Path

    from mpsynth.config import apply_overrides, build_config
    from mpsynth.core.errors import ConfigError
    from mpsynth.orchestration.pipeline import evaluate_files

    if real is None:
        if config is None:
            raise ConfigError("give a CONFIG, or --real and --synthetic")
        _run(config, overrides, "evaluate", {"evaluate"} if force else set())
        return
    files = [Path(p) for p in (*synthetic, *more_synthetic)]
    if config is not None and Path(config).suffix.lower() in (".csv", ".jsonl", ".parquet"):
        files.insert(0, Path(config))  # `--synthetic A B`: B arrives as the first positional
        config = None
    raw = {"run_dir": out or "runs/evaluate", "ingest": {"inputs": [{"path": real}]}}
    if config is not None:
        import yaml

        raw = {**(yaml.safe_load(Path(config).read_text()) or {}), **raw}
    evaluate_files(
        build_config(apply_overrides(raw, list(overrides)), source="evaluate options"),
        files,
        _synthetic_input(synthetic_columns, synthetic_platform),
    )
    log.info("report: %s", Path(raw["run_dir"]) / "report" / "report.html")


@cli.command(name="publish")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--out", type=click.Path(file_okay=False), help="the folder (default RUN_DIR/publish)"
)
@click.option(
    "--license",
    "licence",
    default="other",
    show_default=True,
    help="the synthetic sets' licence, as the Hub names it (cc-by-4.0, ...)",
)
@click.option(
    "--include-real",
    is_flag=True,
    help="add the real posts as a config of their own, where their licences allow it",
)
@click.option("--repo", help="upload to this Hub dataset repository (ORG/NAME)")
@click.option("--private", is_flag=True, help="the repository is created private")
def publish_command(
    run_dir: str, out: str | None, licence: str, include_real: bool, repo: str | None,
    private: bool,
) -> None:  # fmt: skip
    """Write a finished run as a Hugging Face dataset folder (one config per set, the card with
    the Hub's header, Croissant metadata, the config, metrics and report), and upload it."""
    from pathlib import Path

    from mpsynth.publish.folder import publish_folder
    from mpsynth.rundir.directory import RunDirectory

    folder = Path(out) if out else Path(run_dir) / "publish"
    summary = publish_folder(Path(run_dir), folder, include_real, licence)
    for name, rows in summary["sets"].items():
        log.info("publish: %s, %d rows", name, rows)
    log.info("publish: %s (%d files)", folder, len(summary["files"]))
    if repo is not None:
        from mpsynth.publish.hub import upload

        fingerprint = str(RunDirectory(Path(run_dir)).manifest().get("config_hash", ""))
        upload(folder, repo, private, fingerprint)


@cli.command(name="drop")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--ids",
    "ids_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="the posts to drop: 'SET<TAB>ID' or 'ID' (every set) per line, as the viewer exports",
)
@click.option("--reason", default="flagged in review", show_default=True)
def drop_command(run_dir: str, ids_file: str, reason: str) -> None:
    """Drop posts a reviewer flagged from a run's sets (and the replies beneath them), then bring
    the evaluation, report, card and viewer up to date. What was dropped is kept aside."""
    import json
    from pathlib import Path

    from mpsynth.orchestration.pipeline import run_pipeline
    from mpsynth.stages.drops import DROPS, read_ids_file, record_drops

    root = Path(run_dir)
    pairs = read_ids_file(Path(ids_file))
    added = record_drops(root, pairs, reason)
    log.info("drop: %d posts listed in %s, %d of them new", len(pairs), root / DROPS, added)
    config = load_config(root / "config.yaml", (f"run_dir={root}",))
    run_pipeline(config)
    final = "structure" if config.pipeline == "mptm" else "postprocess"
    summary = json.loads((root / final / "summary.json").read_text())
    for name, counts in sorted(summary.get("review", {}).items()):
        if counts.get("dropped"):
            log.info(
                "drop: %s without %d posts and %d replies beneath them (kept in %s)",
                name,
                counts["dropped"],
                counts.get("replies_dropped", 0),
                root / final / "dropped" / f"{name}.parquet",
            )


@cli.command(name="export-coordination")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", help="folder for the CSV files (default: RUN_DIR/export/coordination)")
def export_coordination_command(run_dir: str, out: str | None) -> None:
    """Write each set and the real posts in the coordination-network-toolkit's CSV format."""
    from pathlib import Path

    from mpsynth.publish.coordination import export_coordination

    folder = Path(out) if out else Path(run_dir) / "export" / "coordination"
    for name, (rows, skipped) in export_coordination(Path(run_dir), folder).items():
        log.info(
            "export-coordination: %s, %d posts%s",
            folder / f"{name}.csv",
            rows,
            f" ({skipped} without an account or a time left out)" if skipped else "",
        )


CACHES = ("embeddings", "entities", "completions")


@cli.command(name="cache")
@_config
@_overrides
@click.option(
    "--clear",
    type=click.Choice([*CACHES, "all"]),
    help="empty one cache (or all of them) instead of showing them",
)
def cache_command(config: str, overrides: tuple[str, ...], clear: str | None) -> None:
    """Show the caches a config's runs read and fill (embeddings, entities, model answers), where
    they are and how large, or clear one."""
    import shutil

    from mpsynth.rundir.context import StageContext
    from mpsynth.rundir.directory import RunDirectory
    from mpsynth.stages.embed import cache_folder

    settings = load_config(config, overrides)
    root = cache_folder(StageContext(settings, RunDirectory.open(settings.run_dir, pull=False)))
    for kind in CACHES if clear in (None, "all") else (clear,):
        folder = root / kind
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        size = sum(p.stat().st_size for p in files)
        if clear is not None:
            shutil.rmtree(folder, ignore_errors=True)
            log.info(
                "cache %s: cleared %s (%d files, %.1f MB)", kind, folder, len(files), size / 1e6
            )
        else:
            log.info("cache %s: %s, %d files, %.1f MB", kind, folder, len(files), size / 1e6)


def _synthetic_input(columns: tuple[str, ...], platform: str | None) -> dict:
    """--synthetic-column/--synthetic-platform as an ingest input's settings, validated as one."""
    from mpsynth.config import ColumnMap, InputSpec
    from mpsynth.core.errors import ConfigError

    mapping = {}
    for item in columns:
        field, sep, column = item.partition("=")
        if not sep or field not in ColumnMap.model_fields or not column:
            raise ConfigError(
                f"--synthetic-column {item!r}: expected FIELD=COLUMN with FIELD one of "
                f"{', '.join(ColumnMap.model_fields)}"
            )
        mapping[field] = column
    settings: dict = {"columns": mapping} if mapping else {}
    if platform is not None:
        settings["platform"] = platform
    InputSpec.model_validate({"path": ".", **settings})
    return settings


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mpsynth", standalone_mode=False)
    except MpsynthError as error:
        click.echo(f"error: {error}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
