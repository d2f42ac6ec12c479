"""`mpsynth publish`: a finished run as a dataset folder any Hugging Face Hub user knows.

    <out>/
      README.md          the Hub's YAML header (license, language, task categories, size category,
                         one config per set, pretty name, tags), then the run's dataset card
      data/<set>/train.parquet   each synthetic set (and the real posts, only when asked and
                         their licences allow it), every column described
      croissant.json     Croissant metadata (mlcroissant), fields described, provenance
      mpsynth/           config.yaml (the resolved config: environment variable names, never keys),
                         metrics.parquet, report.html (and viewer.html, with the real posts)

`datasets.load_dataset(<out>, <set>)` loads each set as its own config.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from mpsynth.config import RunConfig, load_config
from mpsynth.core import schema
from mpsynth.core.errors import StageError
from mpsynth.rundir.context import StageContext
from mpsynth.rundir.directory import RunDirectory

log = logging.getLogger(__name__)

REAL_CONFIG = "real"
# licences under which the real posts may be passed on (with attribution; share-alike and
# non-commercial terms travel with them, and the card names each)
REDISTRIBUTABLE = (
    "CC0-1.0",
    "CC-BY-",
    "CC-BY-SA-",
    "CC-BY-NC-",
    "MIT",
    "Apache-2.0",
    "BSD-",
    "ODC-By-",
    "ODbL-",
    "PDDL-",
)


def input_licences(config: RunConfig) -> dict[str, list[str]]:
    """Each input (its path as configured) and the licences its rows state: the input's `license`
    setting, else the distinct values of a `license` column; [] where neither says."""
    from mpsynth.stages.ingest.normalise import expand_input

    found = {}
    for spec in config.ingest.inputs:
        if spec.license is not None:
            found[str(spec.path)] = [spec.license]
            continue
        if (card := _hub_card_licence(spec.path)) is not None:  # a dataset folder's own card
            found[str(spec.path)] = [card]
            continue
        values: set[str] = set()
        for file, kind in expand_input(spec):
            column = _license_column(file, kind)
            values.update(v for v in column if v)
        found[str(spec.path)] = sorted(values)
    return found


def _hub_card_licence(path: Path | str) -> str | None:
    """The `license` of a Hugging Face dataset folder's card (its README's YAML header)."""
    from mpsynth.stages.ingest.datasets import card_header

    licence = (card_header(path) or {}).get("license") if isinstance(path, Path) else None
    return licence if isinstance(licence, str) else None


def _license_column(file: Path, kind: str) -> list[str]:
    try:
        if kind == "arrow":
            from mpsynth.stages.ingest.readers import arrow_table

            table = arrow_table(file)
            return table.column("license").to_pylist() if "license" in table.column_names else []
        if kind == "parquet":
            return pq.read_table(file, columns=["license"]).column("license").to_pylist()
        if kind == "csv":
            from pyarrow import csv

            options = csv.ConvertOptions(
                include_columns=["license"], column_types={"license": pa.string()}
            )
            return csv.read_csv(file, convert_options=options).column("license").to_pylist()
        from pyarrow import json as pajson

        table = pajson.read_json(file)
        return table.column("license").to_pylist() if "license" in table.column_names else []
    except (KeyError, pa.ArrowInvalid):
        return []


def redistributable(licence: str) -> bool:
    return licence.strip().upper().startswith(tuple(r.upper() for r in REDISTRIBUTABLE))


def check_real_licences(config: RunConfig) -> dict[str, list[str]]:
    """The inputs' licences when every one allows the real posts to be passed on; else an error
    naming each input that does not (or states none)."""
    found = input_licences(config)
    refused = {
        path: licences
        for path, licences in found.items()
        if not licences or not all(redistributable(lic) for lic in licences)
    }
    if refused:
        reasons = "; ".join(
            f"{path}: {', '.join(licences) if licences else 'no licence stated'}"
            for path, licences in refused.items()
        )
        raise StageError(
            "publish --include-real: the real posts may not be passed on under their licences "
            f"({reasons}). State an input's licence with ingest.inputs[].license where it allows "
            f"redistribution (one of {', '.join(REDISTRIBUTABLE)}...), or publish the synthetic "
            "sets alone"
        )
    return found


def size_category(rows: int) -> str:
    """The Hub's size category of a dataset with `rows` rows."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")]  # fmt: skip
    return next((name for bound, name in bounds if rows < bound), "10M<n<100M")


def publish_folder(
    run_dir: Path, out: Path, include_real: bool = False, licence: str = "other"
) -> dict[str, Any]:
    """Write the dataset folder of a finished run; what it holds (sets, rows, files)."""
    from mpsynth.stages.evaluate.runner import synthetic_sets

    run_dir = Path(run_dir)
    config = load_config(run_dir / "config.yaml")
    ctx = StageContext(config, RunDirectory(run_dir))
    card_path = run_dir / "report" / "dataset_card.md"
    if not card_path.is_file():
        raise StageError(f"{run_dir} has no report yet: run it to the end first (mpsynth run)")
    sets = {p.stem: p for p in synthetic_sets(ctx)}
    real_licences = check_real_licences(config) if include_real else None
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    rows = {}
    for name, path in sets.items():
        rows[name] = _write_set(pq.read_table(path), out / "data" / name)
    if include_real:
        rows[REAL_CONFIG] = _write_set(
            pq.read_table(ctx.path("ingest", "posts.parquet")), out / "data" / REAL_CONFIG
        )
    own = out / "mpsynth"
    own.mkdir()
    shutil.copyfile(run_dir / "config.yaml", own / "config.yaml")
    shutil.copyfile(ctx.path("evaluate", "metrics.parquet"), own / "metrics.parquet")
    shutil.copyfile(ctx.path("report", "report.html"), own / "report.html")
    viewer = ctx.run.stage_dir("report") / "viewer.html"
    if include_real and viewer.is_file():  # it shows real posts: only where they may go too
        shutil.copyfile(viewer, own / "viewer.html")
    languages = _languages(ctx)
    header = {
        "license": licence,
        "language": languages or ["en"],
        "multilinguality": "multilingual" if len(languages) > 1 else "monolingual",
        "task_categories": ["text-generation", "text-classification"],
        "size_categories": [size_category(sum(rows.values()))],
        "pretty_name": config.report.title,
        "tags": ["synthetic", "social-media", "mpsynth"],
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}],
            }
            for name in rows
        ],
    }
    card = card_path.read_text(encoding="utf-8")
    if real_licences is not None:
        card += "\n## The real posts (config `real`)\n\n" + "".join(
            f"- `{path}`: {', '.join(licences)}\n" for path, licences in real_licences.items()
        )
    (out / "README.md").write_text(
        "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + card,
        encoding="utf-8",
    )
    from mpsynth.publish.croissant import croissant_metadata

    metadata = croissant_metadata(out, config, rows, ctx.run.manifest(), licence, real_licences)
    (out / "croissant.json").write_text(
        json.dumps(metadata.to_json(), indent=2, default=str) + "\n"
    )
    record = own / "publish.json"  # itself among the files it lists
    files = sorted(
        {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
        | {str(record.relative_to(out))}
    )
    summary = {"sets": rows, "files": files, "real_licences": real_licences}
    record.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_set(table: pa.Table, folder: Path) -> int:
    folder.mkdir(parents=True)
    pq.write_table(schema.described(table), folder / "train.parquet")
    return table.num_rows


def _languages(ctx: StageContext) -> list[str]:
    """The real posts' languages (declared), the most frequent first; [] where none is declared."""
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"))
    if "lang" not in posts.column_names:
        return []
    counts = posts.column("lang").drop_null().value_counts().to_pylist()
    return [c["values"] for c in sorted(counts, key=lambda c: -c["counts"]) if c["values"]]
