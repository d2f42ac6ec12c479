"""Ingest on the files users really have: broken quoting, huge posts, Excel's BOM, stray columns,
empty files. Every row read is kept or quarantined with its reason and line; no traceback."""

from __future__ import annotations

import codecs
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpsynth.config import IngestConfig
from mpsynth.core.errors import InputError
from mpsynth.stages.ingest.normalise import check_inputs, ingest
from tests.conftest import DEMO_COLUMNS, first_per_platform, write_csv


def _config(*inputs: dict, **settings) -> IngestConfig:
    return IngestConfig.model_validate({"inputs": list(inputs), **settings})


def _accounted(result) -> None:
    read = sum(v["read"] for v in result.summary.values())
    assert read == result.posts.num_rows + result.quarantine.num_rows
    assert all(result.quarantine["reason"].to_pylist())


def _csv_line(row: dict) -> str:
    return ",".join(f'"{row[c]}"' if c == "text" else row[c] for c in DEMO_COLUMNS) + "\n"


@pytest.fixture
def tweets(demo_rows):
    # real one-line tweets without quotes, so the broken lines below are the only broken ones
    return [
        r
        for r in demo_rows
        if r["platform"] == "twitter" and "\n" not in r["text"] and '"' not in r["text"]
    ][:30]


def test_unclosed_quote_costs_one_row_and_the_rest_is_read(tmp_path, tweets):
    path = tmp_path / "broken.csv"
    lines = [",".join(DEMO_COLUMNS) + "\n"] + [_csv_line(r) for r in tweets]
    # line 6: the text's closing quote is missing, so it swallows every line after it
    lines[5] = lines[5].replace('",en', ",en", 1)
    path.write_text("".join(lines), encoding="utf-8")
    result = ingest(_config({"path": str(path)}))
    _accounted(result)
    assert result.posts.num_rows == 29
    [bad] = result.quarantine.to_pylist()
    assert bad["source_row"] == 6 and bad["source_file"] == str(path)
    assert bad["reason"].startswith("malformed CSV row")
    assert tweets[4]["text"] in bad["text"]  # the raw line is kept, nothing lost
    kept_ids = result.posts["id"].to_pylist()
    assert kept_ids == [r["id"] for i, r in enumerate(tweets) if i != 4]
    assert result.posts["source_row"].to_pylist() == [i + 2 for i in range(30) if i != 4]


def test_wrong_column_count_is_quarantined_with_its_line(tmp_path, tweets):
    path = tmp_path / "extra.csv"
    lines = [",".join(DEMO_COLUMNS) + "\n"] + [_csv_line(r) for r in tweets[:10]]
    lines[3] = lines[3].rstrip("\n") + ",surplus,fields\n"
    lines[8] = "twitter,short-row\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = ingest(_config({"path": str(path)}))
    _accounted(result)
    reasons = dict(
        zip(
            result.quarantine["source_row"].to_pylist(),
            result.quarantine["reason"].to_pylist(),
            strict=True,
        )
    )
    assert reasons == {
        4: "malformed CSV row: 9 fields where the header has 7",
        9: "malformed CSV row: 2 fields where the header has 7",
    }
    assert result.posts.num_rows == 8


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_post_of_several_megabytes_is_quarantined_not_a_crash(tmp_path, tweets, fmt):
    huge = "spam " * 1_000_000  # 5 MB in one post
    rows = [dict(r) for r in tweets[:5]]
    rows[2]["text"] = huge
    if fmt == "csv":
        path = write_csv(tmp_path / "huge.csv", rows, DEMO_COLUMNS)
    else:
        path = tmp_path / "huge.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = ingest(_config({"path": str(path)}))
    _accounted(result)
    assert result.posts.num_rows == 4
    [bad] = result.quarantine.to_pylist()
    assert bad["source_row"] == (4 if fmt == "csv" else 3)
    assert bad["reason"] == "text of 5,000,000 characters, over ingest.max_text_chars (100,000)"
    assert bad["text"] == huge  # kept whole in quarantine
    # and read, when the limit allows it
    relaxed = ingest(_config({"path": str(path)}, max_text_chars=10_000_000))
    assert relaxed.posts.num_rows == 5 and huge in relaxed.posts["text"].to_pylist()


def test_excel_utf8_bom_is_accepted(tmp_path, demo_rows):
    rows = first_per_platform(demo_rows, 3)
    plain = write_csv(tmp_path / "plain.csv", rows, DEMO_COLUMNS)
    bom = tmp_path / "excel.csv"
    bom.write_bytes(codecs.BOM_UTF8 + plain.read_bytes())
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(codecs.BOM_UTF8 + "".join(json.dumps(r) + "\n" for r in rows).encode())
    for path in (bom, jsonl):
        result = ingest(_config({"path": str(path)}))
        assert result.posts["text"].to_pylist() == [r["text"] for r in rows]
        assert result.posts["id"].to_pylist() == [r["id"] for r in rows]


def test_utf16_file_is_a_clear_error(tmp_path, demo_rows):
    path = tmp_path / "utf16.csv"
    path.write_text(",".join(DEMO_COLUMNS) + "\n" + _csv_line(demo_rows[0]), encoding="utf-16")
    with pytest.raises(InputError, match=r"utf16\.csv: the file is UTF-16-encoded"):
        ingest(_config({"path": str(path)}))


def test_extra_columns_of_any_type_are_ignored(tmp_path, demo_rows):
    rows = first_per_platform(demo_rows, 2)
    path = tmp_path / "synthetic.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [r["id"] for r in rows],
                "platform": [r["platform"] for r in rows],
                "text": [r["text"] for r in rows],
                "example_ids": [["a", "b"]] * len(rows),  # the project's own list column
                "scores": [{"x": 1.0}] * len(rows),
                "lang": pa.array([r["lang"] for r in rows]).dictionary_encode(),
            }
        ),
        path,
    )
    result = ingest(_config({"path": str(path)}))
    assert result.posts["text"].to_pylist() == [r["text"] for r in rows]
    assert result.posts["source_row"].to_pylist() == list(range(1, len(rows) + 1))


def test_text_column_that_is_not_text_names_file_and_column(tmp_path):
    path = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"platform": ["reddit"], "text": [42], "id": ["a"]}), path)
    with pytest.raises(InputError) as error:
        ingest(_config({"path": str(path)}))
    message = str(error.value)
    assert str(path) in message and "'text' (mapped to text) holds int64, not text" in message
    # JSONL: a line whose text is not a string is quarantined with that reason
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text(
        '{"platform": "reddit", "text": 5, "id": "n"}\n{"platform": "reddit", "text": "ok", "id": 7}\n'
    )
    result = ingest(_config({"path": str(jsonl)}))
    assert result.quarantine["reason"].to_pylist() == ["text is int, not a string"]
    assert result.posts["id"].to_pylist() == ["7"]


def test_source_row_is_the_line_for_jsonl_blank_lines_counted(tmp_path, tweets):
    path = tmp_path / "gaps.jsonl"
    lines = [json.dumps(r) for r in tweets[:3]]
    path.write_text(lines[0] + "\n\n\n" + lines[1] + "\n{oops\n" + lines[2] + "\n")
    result = ingest(_config({"path": str(path)}))
    assert result.posts["source_row"].to_pylist() == [1, 4, 6]
    assert result.quarantine["source_row"].to_pylist() == [5]
    assert result.quarantine["text"].to_pylist() == ["{oops"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("header_only.csv", b"platform,id,text\n"),
        ("header_and_blank_lines.csv", b"platform,id,text\n\n\n"),
        ("empty.csv", b""),
        ("empty.jsonl", b"\n\n"),
    ],
)
def test_a_file_without_rows_says_so_before_any_work(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"^no rows in {path}$"):
        check_inputs(_config({"path": str(path)}))


def test_zero_row_parquet_says_no_rows(tmp_path):
    path = tmp_path / "none.parquet"
    pq.write_table(
        pa.table({"platform": pa.array([], pa.string()), "text": pa.array([], pa.string())}), path
    )
    with pytest.raises(InputError, match=f"^no rows in {path}$"):
        check_inputs(_config({"path": str(path)}))


def test_nul_and_control_characters_are_stripped_and_counted(tmp_path, demo_rows):
    rows = [dict(r) for r in first_per_platform(demo_rows, 2)]
    rows[0]["text"] = "hello\x00 world\x1b[31m red\x7f"
    rows[0]["id"] = "id\x00-1"
    rows[1]["text"] = "\x00\x00"  # nothing left: empty text, quarantined
    rows[2]["text"] = "tab\tand\nnewline stay"
    path = write_csv(tmp_path / "posts.csv", rows, DEMO_COLUMNS)
    result = ingest(IngestConfig.model_validate({"inputs": [{"path": str(path)}]}))
    texts = dict(zip(result.posts["id"].to_pylist(), result.posts["text"].to_pylist(), strict=True))
    assert texts["id-1"] == "hello world[31m red"
    assert texts[rows[2]["id"]] == "tab\tand\nnewline stay"
    assert result.quarantine["reason"].to_pylist() == ["empty text"]
    assert sum(v["control_chars_stripped"] for v in result.summary.values()) == 1
