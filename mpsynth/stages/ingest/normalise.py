"""Ingest: read CSV / JSONL / Parquet inputs into the posts schema; bad rows go to quarantine."""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from mpsynth.config import IngestConfig, InputSpec
from mpsynth.core import console, schema
from mpsynth.core.errors import InputError
from mpsynth.core.locations import is_remote
from mpsynth.core.platforms import normalise_platform
from mpsynth.stages.ingest import readers
from mpsynth.stages.ingest.datasets import dataset_files
from mpsynth.stages.ingest.interactions import InteractionReader
from mpsynth.stages.ingest.links import numeric_id, repair_links
from mpsynth.stages.ingest.timestamps import TimestampParser

log = logging.getLogger(__name__)

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
NO_PLATFORM = "(none)"
OPTIONAL = (
    "timestamp", "author", "label", "split", "lang", *schema.LINK_FIELDS, "post_kind",
    *schema.ENGAGEMENT,
)  # fmt: skip
UNKNOWN_LANGUAGE = {"", "und", "unknown", "none", "null", "nan", "xx", "zxx"}
PROGRESS_EVERY = 50_000  # rows between progress updates
# NUL and the other control characters (tab, newline and carriage return kept): stripped from text
# and ids, each post that held one counted; they break CSV tools, terminals and some tokenizers
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass
class IngestResult:
    posts: pa.Table
    quarantine: pa.Table
    summary: dict[str, dict[str, int]] = field(default_factory=dict)
    # per input file: timestamps parsed, unparsed (kept as null) and missing
    timestamps: dict[str, dict[str, int]] = field(default_factory=dict)


def expand_input(spec: InputSpec) -> list[tuple[Path, str]]:
    """The files an input names (a file, or every supported file under a folder) and their formats;
    a remote file (s3://...) as its local copy."""
    from mpsynth.core.locations import local_input

    path = spec.path
    if is_remote(path):
        local = local_input(str(path), "ingest.inputs[].path")
        return [(local, spec.format if spec.format != "auto" else _format_of(local))]
    if not path.exists():
        raise InputError(_missing_input(None, spec))
    if path.is_dir():
        files = dataset_files(path, spec.dataset_config)
        if files is None:
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIX_FORMATS)
        if not files:
            raise InputError(f"input folder {path} holds no .csv, .jsonl, .parquet or .arrow files")
    else:
        files = [path]
    return [(file, spec.format if spec.format != "auto" else _format_of(file)) for file in files]


def _format_of(file: Path) -> str:
    fmt = SUFFIX_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{file}: cannot tell the format from the suffix; set format: csv|jsonl|parquet"
        )
    return fmt


def _wanted_columns(spec: InputSpec) -> dict[str, str]:
    """field -> input column, for the fields this input maps to a column."""
    mapping = spec.columns.model_dump()
    if spec.platform is not None:
        mapping["platform"] = None
    return {name: column for name, column in mapping.items() if column is not None}


def _header(file: Path, fmt: str, wanted: dict[str, str]) -> list[str]:
    """The file's column names; InputError when it cannot be read, holds no rows, or (Parquet) a
    mapped column holds the wrong type."""
    try:
        match fmt:
            case "csv":
                header, has_rows = readers.csv_header(file)
            case "parquet":
                columns, n_rows = readers.parquet_columns(file)
                readers.check_parquet_types(file, columns, wanted)
                header, has_rows = columns.names, n_rows > 0
            case "arrow":
                table = readers.arrow_table(file)
                readers.check_parquet_types(file, table.schema, wanted)
                header, has_rows = table.column_names, table.num_rows > 0
            case _:
                header, has_rows = _jsonl_header(file)
    except (OSError, ValueError) as error:
        raise InputError(f"{file}: cannot read: {error}") from None
    if not has_rows:
        raise InputError(f"no rows in {file}")
    return header


def _jsonl_header(file: Path) -> tuple[list[str], bool]:
    """The keys of the first line holding a JSON object (a JSONL file has no header)."""
    readers.check_encoding(file)
    with file.open("rb") as handle:
        seen_row = False
        for line in handle:
            line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            seen_row = True
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a broken line is quarantined later; the next may name the columns
            if isinstance(record, dict):
                return list(record), True
    return [], seen_row


def check_inputs(
    config: IngestConfig, required: tuple[str, ...] = ()
) -> list[tuple[InputSpec, Path, str]]:
    """Fail fast, before any work, on a missing or empty file, a missing mapped column or a text
    column that holds no text (naming file and column).

    `text` and `platform` (unless fixed) are required; the optional columns are required only when
    the config names them explicitly (or the run needs them: `required`, the label of a labelled
    run), so a file without `author` under the default mapping is fine.
    """
    missing = [
        _missing_input(number, spec)
        for number, spec in enumerate(config.inputs)
        if not is_remote(spec.path) and not Path(spec.path).exists()
    ]
    if missing:
        raise InputError("\n".join(missing))
    files = []
    for spec in config.inputs:
        explicit = spec.columns.model_fields_set
        for file, fmt in expand_input(spec):
            wanted = _wanted_columns(spec)
            header = _header(file, fmt, wanted)
            for name, column in wanted.items():
                needed = name in ("text", "platform", *required) or name in explicit
                if needed and column not in header and not (fmt == "jsonl" and not header):
                    raise InputError(
                        f"{file}: no column {column!r} (mapped to {name}); columns are {header}"
                    )
            files.append((spec, file, fmt))
    return files


def _missing_input(number: int | None, spec: InputSpec) -> str:
    """An input that is not there, where it was looked for, and the bundled sample to use."""
    path = Path(spec.path)
    line = f"input not found: {path}"
    if not path.is_absolute():
        line += f" (looked in {Path.cwd()}: paths are relative to it)"
    if spec.bundled_sample is not None and number is not None:
        line += (
            f"; a sample of it is bundled: add --set ingest.inputs.{number}.path="
            f"{spec.bundled_sample}"
        )
    return line


def _read_rows(file: Path, fmt: str, columns: list[str]) -> readers.RawRows:
    match fmt:
        case "csv":
            return readers.read_csv(file, columns)
        case "parquet":
            return readers.read_parquet(file, columns)
        case "arrow":
            return readers.read_arrow(file, columns)
        case _:
            return readers.read_jsonl(file, columns)


def language_code(value: str | None) -> str | None:
    """The primary language subtag, lower case ('en-US' -> 'en'); None where it says nothing."""
    if value is None:
        return None
    code = re.split(r"[-_]", value.strip().lower(), maxsplit=1)[0]
    return None if code in UNKNOWN_LANGUAGE else code


def ingest(config: IngestConfig) -> IngestResult:
    """Read every input; return kept posts, quarantined rows with reasons, and per-platform counts."""
    kept: dict[str, list] = {name: [] for name in schema.POSTS.names}
    quarantined: dict[str, list] = {name: [] for name in schema.QUARANTINE.names}
    seen_ids: dict[str, str] = {}
    read, kept_count, bad_count, cleaned = Counter(), Counter(), Counter(), Counter()
    carried: dict[str, Counter] = {}  # platform -> posts carrying each structure field
    accounts: dict[str, set[str]] = {}
    languages: dict[str, Counter] = {}  # platform -> posts per declared language
    parse_time = TimestampParser()
    limit = config.max_text_chars
    interactions = InteractionReader()

    inputs = check_inputs(config)
    for spec, file, fmt in inputs:
        wanted = _wanted_columns(spec)
        rows = _read_rows(file, fmt, list(dict.fromkeys(wanted.values())))
        values = {name: rows.columns[column] for name, column in wanted.items()}
        if "timestamp" in values:
            doubt = parse_time.order(str(file), values["timestamp"], spec.dayfirst)
            if doubt is not None:
                log.warning("ingest: %s", doubt)
        with console.progress(f"ingest {file.name}", len(rows)) as shown:
            for index, line in enumerate(rows.lines):
                if index % PROGRESS_EVERY == 0:
                    shown.update(index)
                raw_platform = (
                    spec.platform if spec.platform is not None else values["platform"][index]
                )
                platform = normalise_platform(raw_platform, config.platform_aliases)
                text = values["text"][index]
                post_id = values["id"][index] if "id" in values else None
                fields = {name: values[name][index] for name in OPTIONAL if name in values}
                held_control = False
                if text is not None and CONTROL.search(text):
                    text, held_control = CONTROL.sub("", text), True
                if post_id and CONTROL.search(post_id):
                    post_id, held_control = CONTROL.sub("", post_id), True
                for name, value in fields.items():
                    if value and CONTROL.search(value):
                        fields[name], held_control = CONTROL.sub("", value), True
                post_id = numeric_id(post_id)
                for name in schema.LINK_FIELDS:
                    if name in fields:
                        fields[name] = numeric_id(fields[name])
                if not post_id:
                    post_id = f"{file.name}:{line}"
                reason = rows.errors[index]
                if reason is None and (text is None or not text.strip()):
                    reason = "empty text"
                if reason is None and len(text) > limit:
                    reason = (
                        f"text of {len(text):,} characters, over ingest.max_text_chars ({limit:,})"
                    )
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
                        ("source_row", line),
                        ("reason", reason),
                        ("id", post_id),
                        ("platform", platform),
                        ("text", rows.raw_text.get(index, text)),
                    ):
                        quarantined[name].append(value)
                    continue
                seen_ids[post_id] = f"{file}:{line}"
                kept_count[platform_key] += 1
                cleaned[platform_key] += held_control
                for name in OPTIONAL:
                    kept[name].append(fields.get(name) or None)
                kept["timestamp"][-1] = parse_time(fields.get("timestamp"), str(file))
                kept["lang"][-1] = language_code(fields.get("lang"))
                for name, value in interactions.read(fields, platform_key).items():
                    kept[name][-1] = value
                if kept["lang"][-1] is not None:
                    languages.setdefault(platform_key, Counter())[kept["lang"][-1]] += 1
                has = carried.setdefault(platform_key, Counter())
                for name in ("author", "timestamp", *schema.LINK_FIELDS):
                    has[name] += kept[name][-1] is not None
                if kept["author"][-1] is not None:
                    accounts.setdefault(platform_key, set()).add(kept["author"][-1])
                kept["id"].append(post_id)
                kept["platform"].append(platform)
                kept["text"].append(text)
                kept["source_file"].append(str(file))
                kept["source_row"].append(line)
            shown.update(len(rows))

    links = repair_links(kept)
    summary = {
        platform: {
            "read": read[platform],
            "kept": kept_count[platform],
            "quarantined": bad_count[platform],
            "control_chars_stripped": cleaned[platform],
            "accounts": len(accounts.get(platform, ())),
            **{
                f"with_{name}": carried.get(platform, Counter())[name]
                for name in ("author", "timestamp", *schema.LINK_FIELDS)
            },
            "with_lang": sum(languages.get(platform, Counter()).values()),
            **interactions.summary(platform),
            "languages": dict(languages.get(platform, Counter()).most_common(5)),
            **{
                key: links.get(platform, Counter())[key]
                for key in (
                    "dangling_reply_to",
                    "dangling_quote_of",
                    "self_replies",
                    "reply_loops",
                    "self_quotes",
                    "quote_loops",
                )
            },
        }
        for platform in sorted(read)
    }
    interactions.warn()
    for file, counts in parse_time.counts.items():
        if counts["unparsed"]:
            log.warning(
                "ingest: %s: %d of %d timestamps in no known form, kept as null",
                file,
                counts["unparsed"],
                sum(counts.values()),
            )
    if not kept["id"]:
        reasons = Counter(quarantined["reason"]).most_common(3)
        files = ", ".join(str(file) for _, file, _ in inputs)
        raise InputError(
            f"no usable posts in {files}: every row was quarantined; most common reasons: "
            + "; ".join(f"{reason} ({n})" for reason, n in reasons)
        )
    return IngestResult(
        posts=pa.Table.from_pydict(kept, schema=schema.POSTS),
        quarantine=pa.Table.from_pydict(quarantined, schema=schema.QUARANTINE),
        summary=summary,
        timestamps=parse_time.counts,
    )
