"""Fuzzing ingest: random bytes, random CSV and JSONL shapes, random encodings. For every input,
either an InputError that names the file, or every row read is kept or quarantined with a reason,
and both tables can be written as Parquet. Never any other exception.

`pytest tests/test_ingest_fuzz.py --hypothesis-show-statistics` prints how many cases ran."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpsynth.config import IngestConfig
from mpsynth.core.errors import InputError
from mpsynth.stages.ingest.normalise import CONTROL, ingest

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
COLUMNS = ["platform", "id", "text", "author", "label", "extra", "Text", "\ufefftext", ""]
PLATFORMS = ["twitter", "X", "reddit", "fb", "", "  ", "YouTube", "mastodon", "\x00"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252", "utf-32"]
# text that breaks naive CSV and JSON handling: quotes, separators, every kind of line break
NASTY = st.text(
    alphabet=st.sampled_from(list("ab ,;\"'\n\r\t\\#@😀é\x00\u2028\ufeff{}[]:")), max_size=40
)
FIELD = st.one_of(NASTY, st.text(max_size=20), st.sampled_from(PLATFORMS))


def _check(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(content)
        config = IngestConfig.model_validate({"inputs": [{"path": str(path)}]})
        try:
            result = ingest(config)
        except InputError as error:
            assert str(path) in str(error), str(error)
            return
        read = sum(v["read"] for v in result.summary.values())
        assert read == result.posts.num_rows + result.quarantine.num_rows
        assert all(result.quarantine["reason"].to_pylist())
        assert all(text.strip() for text in result.posts["text"].to_pylist())
        for column in ("text", "id", "author"):  # control characters never kept
            assert not any(CONTROL.search(v or "") for v in result.posts[column].to_pylist())
        for table in (result.posts, result.quarantine):  # valid UTF-8 throughout
            pq.write_table(table, io.BytesIO())


@FUZZ
@given(content=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_random_bytes(content, suffix):
    _check(content, suffix)


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=6))
    if draw(st.booleans()):
        header = ["platform", "text", *header]
    rows = draw(st.lists(st.lists(FIELD, min_size=0, max_size=len(header) + 2), max_size=12))
    lines = []
    for row in [header, *rows]:
        fields = []
        for value in row:
            if draw(st.integers(0, 4)) == 0:
                fields.append(value)  # unquoted, whatever it holds
            else:
                closing = '"' if draw(st.integers(0, 9)) else ""  # now and then unclosed
                fields.append('"' + value.replace('"', '""') + closing)
        lines.append(",".join(fields))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@FUZZ
@given(content=csv_files())
def test_random_csv_shapes_and_encodings(content):
    _check(content, ".csv")


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | FIELD,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(COLUMNS), inner),
    max_leaves=6,
)


@st.composite
def jsonl_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            lines.append(draw(NASTY))  # not JSON, or a blank line
        elif choice == 1:
            lines.append(json.dumps(draw(JSON_VALUE)))
        else:
            record = draw(st.dictionaries(st.sampled_from(COLUMNS), JSON_VALUE, max_size=5))
            if choice > 2:
                record |= {"platform": draw(FIELD), "text": draw(st.one_of(FIELD, JSON_VALUE))}
            lines.append(json.dumps(record, ensure_ascii=draw(st.booleans())))
    text = "\n".join(lines)
    return text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")


@FUZZ
@given(content=jsonl_files())
def test_random_jsonl_shapes_and_encodings(content):
    _check(content, ".jsonl")
