"""Readers for input files (CSV, JSONL, Parquet): raw rows as Python strings, each with its line in
the file and, for a row that cannot be used, the reason. A reader never fails on a row; it fails
(with InputError naming the file) only when the file as a whole cannot be read."""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core.errors import InputError

# a post of several MB is a post (or a quarantined row), not a crash
csv.field_size_limit(sys.maxsize)

_OTHER_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


@dataclass
class RawRows:
    """Rows of one file: `columns[name][i]` is a string or None; `lines[i]` is where row i starts
    (1-based; a CSV header is line 1); `errors[i]` is why row i cannot be used, or None."""

    columns: dict[str, list[str | None]] = field(default_factory=dict)
    lines: list[int] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    # the raw text of rows that could not be split into fields, by row index, kept for quarantine
    raw_text: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)


def check_encoding(file: Path) -> None:
    with file.open("rb") as handle:
        head = handle.read(4)
    for bom, name in _OTHER_BOMS.items():
        if head.startswith(bom):
            raise InputError(f"{file}: the file is {name}-encoded; save it as UTF-8 and try again")


def _undecodable(value: str) -> bool:
    """True when a value decoded with surrogateescape held bytes that are not UTF-8."""
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _restore_bytes(value: str) -> str:
    """Quarantined text with its undecodable bytes shown as U+FFFD, so it can be stored as UTF-8."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Lines:
    """The file's physical lines, numbered, with push-back so that the lines after a malformed row
    can be parsed again."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.pushed: list[tuple[int, str]] = []  # a stack: the next line is last
        self.number = 0  # of the last line handed out
        self.taken: list[str] = []  # the lines handed out since the last mark

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.pushed:
            self.number, line = self.pushed.pop()
        else:
            line = self.handle.readline()
            if not line:
                raise StopIteration
            self.number += 1
        self.taken.append(line)
        return line

    def mark(self) -> int:
        """Start a new row; return the number of the line it starts on."""
        self.taken = []
        return self.number + 1

    def push_back_all_but_first(self, first_number: int) -> None:
        for offset in range(len(self.taken) - 1, 0, -1):
            self.pushed.append((first_number + offset, self.taken[offset]))
        self.number = first_number


def _open_text(file: Path):
    # utf-8-sig drops an Excel BOM; surrogateescape keeps bad bytes for a per-row reason
    return file.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def csv_header(file: Path) -> tuple[list[str], bool]:
    """The header's column names, and whether any row follows it."""
    check_encoding(file)
    with _open_text(file) as handle:
        reader = csv.reader(handle, strict=True)
        header = _header_row(file, reader)
        try:
            has_rows = any(any(value.strip() for value in row) for row in reader)
        except csv.Error:
            has_rows = True  # a broken row is still a row (quarantined when read)
    return [_restore_bytes(name) for name in header], has_rows


def _header_row(file: Path, reader) -> list[str]:
    try:
        return next(reader, [])
    except csv.Error as error:
        raise InputError(f"{file}: the header (line 1) is not valid CSV: {error}") from None


def read_csv(file: Path, wanted: list[str]) -> RawRows:
    """The `wanted` columns of every row. A row with the wrong number of fields, or broken quoting,
    is kept as an error row (its first line); the lines after it are parsed again, so one unclosed
    quote costs one row, not the rest of the file."""
    check_encoding(file)
    rows = RawRows(columns={name: [] for name in wanted})
    with _open_text(file) as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, strict=True)
        header = _header_row(file, reader)
        width = len(header)
        positions = {name: header.index(name) for name in wanted if name in header}
        while True:
            start = lines.mark()
            problem = None
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                fields, problem = None, f"malformed CSV row ({error})"
            if fields is not None and not any(value.strip() for value in fields):
                continue  # a blank line is no row
            if fields is not None and len(fields) != width:
                problem = f"malformed CSV row: {len(fields)} fields where the header has {width}"
            if problem is not None:
                raw = lines.taken[0] if lines.taken else ""
                if len(lines.taken) > 1:
                    lines.push_back_all_but_first(start)
                    problem += "; the lines after its first are read as rows of their own"
                rows.raw_text[len(rows.lines)] = _restore_bytes(raw.rstrip("\r\n"))
                rows.lines.append(start)
                rows.errors.append(problem)
                for name in wanted:
                    rows.columns[name].append(None)
                continue
            error = None
            for name in wanted:
                position = positions.get(name)
                value = fields[position] if position is not None else None
                if value is not None and _undecodable(value):
                    error = error or f"undecodable bytes in column {name!r} (not UTF-8)"
                    value = _restore_bytes(value)
                rows.columns[name].append(value)
            rows.lines.append(start)
            rows.errors.append(error)
    return rows


def read_jsonl(file: Path, wanted: list[str]) -> RawRows:
    """One JSON object a line; a line that is not one is an error row. Scalars become strings; the
    text must be a JSON string."""
    check_encoding(file)
    rows = RawRows(columns={name: [] for name in wanted})
    with file.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            record, error = None, None
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    record, error = None, "invalid JSON: a line must hold a JSON object"
            except UnicodeDecodeError as exc:
                error = f"undecodable bytes (not UTF-8): {exc.reason}"
            except ValueError as exc:
                error = f"invalid JSON: {exc}"
            if record is None:
                rows.raw_text[len(rows.lines)] = raw.decode("utf-8", "replace").rstrip("\r\n")
            for name in wanted:
                value, problem = _json_value(record.get(name) if record else None, name)
                error = error or problem
                rows.columns[name].append(value)
            rows.lines.append(number)
            rows.errors.append(error)
    return rows


def _json_value(value: object, name: str) -> tuple[str | None, str | None]:
    if value is None or isinstance(value, str):
        return value, None
    if name == "text":
        return None, f"text is {type(value).__name__}, not a string"
    if isinstance(value, bool | int | float):
        return json.dumps(value), None
    return json.dumps(value, ensure_ascii=False), None  # a list of labels, say: kept as JSON


def parquet_columns(file: Path) -> tuple[pa.Schema, int]:
    try:
        meta = pq.read_metadata(file)
        return meta.schema.to_arrow_schema(), meta.num_rows
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{file}: cannot read as Parquet: {error}") from None


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def check_parquet_types(file: Path, schema: pa.Schema, mapping: dict[str, str]) -> None:
    """The text column must hold text; the others text or plain scalars (numbers, dates)."""
    for name, column in mapping.items():
        if column not in schema.names:
            continue
        kind = schema.field(column).type
        if name == "text" and not _is_text(kind):
            raise InputError(
                f"{file}: column {column!r} (mapped to text) holds {kind}, not text; "
                f"map text to a string column"
            )
        if pa.types.is_nested(kind):
            raise InputError(
                f"{file}: column {column!r} (mapped to {name}) holds {kind}, not a single value"
            )


def arrow_table(file: Path) -> pa.Table:
    """An Arrow stream file, as `datasets` saves a dataset (`save_to_disk`), memory-mapped."""
    try:
        with pa.memory_map(str(file)) as source:
            return pa.ipc.open_stream(source).read_all()
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{file}: cannot read as an Arrow stream: {error}") from None


def read_parquet(file: Path, wanted: list[str]) -> RawRows:
    """The wanted columns only (others, of any type, are never read); line = row number, 1-based."""
    schema, _ = parquet_columns(file)
    present = [name for name in wanted if name in schema.names]
    try:
        table = pq.read_table(file, columns=present)
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{file}: cannot read as Parquet: {error}") from None
    return table_rows(table, wanted)


def read_arrow(file: Path, wanted: list[str]) -> RawRows:
    table = arrow_table(file)
    return table_rows(table.select([n for n in wanted if n in table.column_names]), wanted)


def table_rows(table: pa.Table, wanted: list[str]) -> RawRows:
    """A columnar file's wanted columns as rows of strings (absent columns all None)."""
    present = table.column_names
    rows = RawRows(lines=list(range(1, table.num_rows + 1)), errors=[None] * table.num_rows)
    for name in wanted:
        if name not in present:
            rows.columns[name] = [None] * table.num_rows
            continue
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            rows.columns[name] = column.cast(pa.string()).to_pylist()
            continue
        values = []
        for index, raw in enumerate(column.to_pylist()):
            try:
                values.append(None if raw is None else raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                values.append(raw.decode("utf-8", "replace"))
                rows.errors[index] = rows.errors[index] or (
                    f"undecodable bytes in column {name!r}: {error.reason}"
                )
        rows.columns[name] = values
    return rows
