"""`mpsynth evaluate --real R --synthetic A B`: datasets made elsewhere, through the same checks."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from mpsynth.cli import main
from tests.conftest import DEMO_COLUMNS, first_per_platform, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.ray]
STRIP = re.compile(r"(?i)(?:https?://|www\.)\S+|#\w+")


def test_external_datasets_are_evaluated_against_the_real_file(tmp_path, demo_rows):
    rows = first_per_platform(demo_rows, 100)
    real = write_csv(tmp_path / "real.csv", rows, DEMO_COLUMNS)
    copy = write_csv(tmp_path / "copy.csv", rows, DEMO_COLUMNS)
    stripped_rows = [{**r, "text": STRIP.sub("", r["text"]).strip() or "."} for r in rows]
    stripped_rows.append({**rows[0], "id": "no-text", "text": "  "})  # quarantined, not lost
    stripped = write_csv(tmp_path / "stripped.csv", stripped_rows, DEMO_COLUMNS)
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--real",
            str(real),
            "--synthetic",
            str(copy),
            str(stripped),
            "--out",
            str(out),
            "--set",
            "embed.embedder.dimensions=32",
            "--set",
            "topics.min_cluster_size=8",
        ]
    )
    assert code == 0
    metrics = {
        (m["dataset"], m["metric"]): m["value"]
        for m in pq.read_table(out / "evaluate" / "metrics.parquet").to_pylist()
        if m["platform"] == "all"
    }
    assert metrics[("copy", "exact_copy_share")] == 1.0
    assert metrics[("copy", "hashtag_set_overlap")] == 1.0
    assert metrics[("stripped", "share_with_hashtags")] == 0.0
    assert ("copy", "near_copy_of_examples_share") not in metrics  # no record of examples shown
    assert pq.read_table(out / "postprocess" / "quarantine-stripped.parquet")[
        "reason"
    ].to_pylist() == ["empty text"]
    assert (out / "report" / "report.html").is_file() and (
        out / "report" / "dataset_card.md"
    ).is_file()


def test_evaluate_needs_a_config_or_files(capsys):
    assert main(["evaluate"]) == 2
    assert "give a CONFIG, or --real and --synthetic" in capsys.readouterr().err
