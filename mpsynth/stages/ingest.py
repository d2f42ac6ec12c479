"""Ingest: read CSV / JSONL / Parquet inputs into the posts schema; bad rows go to quarantine."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mpsynth import schema
from mpsynth.config import IngestConfig, InputSpec
from mpsynth.errors import InputError
from mpsynth.platforms import normalise_platform

SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
FIELDS = ("id", "platform", "text", "timestamp", "author", "label")
NO_PLATFORM = "(none)"


@dataclass
class IngestResult:
    posts: pa.Table
    quarantine: pa.Table
    summary: dict[str, dict[str, int]] = field(default_factory=dict)


def expand_input(spec: InputSpec) -> list[tuple[Path, str]]:
    """The files an input names (a file, or every supported file under a folder) and their formats."""
    path = spec.path
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIX_FORMATS)
        if not files:
            raise InputError(f"input folder {path} holds no .csv, .jsonl or .parquet files")
    else:
        files = [path]
    resolved = []
    for file in files:
        fmt = spec.format if spec.format != "auto" else SUFFIX_FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise InputError(
                f"{file}: cannot tell the format from the suffix; set format: csv|jsonl|parquet"
            )
        resolved.append((file, fmt))
    return resolved


def _wanted_columns(spec: InputSpec) -> dict[str, str]:
    """field -> input column, for the fields this input maps to a column."""
    mapping = spec.columns.model_dump()
    if spec.platform is not None:
        mapping["platform"] = None
    return {name: column for name, column in mapping.items() if column is not None}


def _read_header(file: Path, fmt: str) -> list[str]:
    try:
        if fmt == "csv":
            with file.open(encoding="utf-8", errors="replace", newline="") as handle:
                return next(csv.reader(handle), [])
        if fmt == "parquet":
            return pq.read_schema(file).names
        with file.open("rb") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return list(record) if isinstance(record, dict) else []
        return []
    except (OSError, ValueError, pa.ArrowException) as error:
        raise InputError(f"{file}: cannot read: {error}") from None


def check_inputs(config: IngestConfig) -> list[tuple[InputSpec, Path, str]]:
    """Fail fast, before any work, on a missing file or a missing mapped column (naming both).

    `text` and `platform` (unless fixed) are required; the optional columns are required only when
    the config names them explicitly, so a file without `author` under the default mapping is fine.
    """
    files = []
    for spec in config.inputs:
        explicit = spec.columns.model_fields_set
        for file, fmt in expand_input(spec):
            header = _read_header(file, fmt)
            for name, column in _wanted_columns(spec).items():
                required = name in ("text", "platform") or name in explicit
                if required and column not in header:
                    raise InputError(
                        f"{file}: no column {column!r} (mapped to {name}); columns are {header}"
                    )
            files.append((spec, file, fmt))
    return files


def _read_raw(file: Path, fmt: str) -> tuple[dict[str, list], list[str | None]]:
    """All columns as Python strings (None for nulls), and a per-row byte or JSON error."""
    if fmt == "csv":
        names = _read_header(file, fmt)
        table = pacsv.read_csv(
            file,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.binary() for name in names},
                strings_can_be_null=False,
            ),
        )
        return _decode_binary(table)
    if fmt == "parquet":
        table = pq.read_table(file)
        table = pa.table(
            {
                name: col if pa.types.is_binary(col.type) else col.cast(pa.string())
                for name, col in zip(table.column_names, table.columns, strict=True)
            }
        )
        return _decode_binary(table)
    return _read_jsonl(file)


def _decode_binary(table: pa.Table) -> tuple[dict[str, list], list[str | None]]:
    columns: dict[str, list] = {}
    errors: list[str | None] = [None] * table.num_rows
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not pa.types.is_binary(column.type):
            columns[name] = column.to_pylist()
            continue
        try:  # fast path: the whole column is valid UTF-8
            columns[name] = column.cast(pa.string()).to_pylist()
            continue
        except pa.ArrowInvalid:
            pass
        values = []
        for row, raw in enumerate(column.to_pylist()):
            try:
                values.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                values.append(None)
                errors[row] = errors[row] or f"undecodable bytes in column {name!r}: {error.reason}"
        columns[name] = values
    return columns, errors


def _read_jsonl(file: Path) -> tuple[dict[str, list], list[str | None]]:
    records: list[dict] = []
    errors: list[str | None] = []
    with file.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("a line must hold a JSON object")
                records.append(record)
                errors.append(None)
            except UnicodeDecodeError as error:
                records.append({})
                errors.append(f"undecodable bytes: {error.reason}")
            except ValueError as error:
                records.append({})
                errors.append(f"invalid JSON: {error}")
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {
        name: [None if r.get(name) is None else str(r[name]) for r in records] for name in names
    }
    return columns, errors


def ingest(config: IngestConfig) -> IngestResult:
    """Read every input; return kept posts, quarantined rows with reasons, and per-platform counts."""
    kept: dict[str, list] = {name: [] for name in schema.POSTS.names}
    quarantined: dict[str, list] = {name: [] for name in schema.QUARANTINE.names}
    seen_ids: dict[str, str] = {}
    read, kept_count, bad_count = Counter(), Counter(), Counter()

    for spec, file, fmt in check_inputs(config):
        columns, errors = _read_raw(file, fmt)
        wanted = _wanted_columns(spec)
        n_rows = len(errors)
        values = {name: columns.get(column, [None] * n_rows) for name, column in wanted.items()}
        for index in range(n_rows):
            row_number = index + 1
            raw_platform = spec.platform if spec.platform is not None else values["platform"][index]
            platform = normalise_platform(raw_platform, config.platform_aliases)
            text = values["text"][index]
            post_id = values["id"][index] if "id" in values else None
            if not post_id:
                post_id = f"{file.name}:{row_number}"
            reason = errors[index]
            if reason is None and (text is None or not text.strip()):
                reason = "empty text"
            if reason is None and platform is None:
                reason = "no platform"
            if reason is None and post_id in seen_ids:
                reason = f"duplicate id (first seen at {seen_ids[post_id]})"
            platform_key = platform or NO_PLATFORM
            read[platform_key] += 1
            if reason is not None:
                bad_count[platform_key] += 1
                for name, value in (
                    ("source_file", str(file)),
                    ("source_row", row_number),
                    ("reason", reason),
                    ("id", post_id),
                    ("platform", platform),
                    ("text", text),
                ):
                    quarantined[name].append(value)
                continue
            seen_ids[post_id] = f"{file}:{row_number}"
            kept_count[platform_key] += 1
            for name in ("timestamp", "author", "label"):
                kept[name].append((values[name][index] or None) if name in values else None)
            kept["id"].append(post_id)
            kept["platform"].append(platform)
            kept["text"].append(text)
            kept["source_file"].append(str(file))
            kept["source_row"].append(row_number)

    summary = {
        platform: {
            "read": read[platform],
            "kept": kept_count[platform],
            "quarantined": bad_count[platform],
        }
        for platform in sorted(read)
    }
    if not kept["id"]:
        raise InputError("no usable posts in the inputs: every row was quarantined")
    return IngestResult(
        posts=pa.Table.from_pydict(kept, schema=schema.POSTS),
        quarantine=pa.Table.from_pydict(quarantined, schema=schema.QUARANTINE),
        summary=summary,
    )
