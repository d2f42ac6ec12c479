"""`mpsynth evaluate --real R --synthetic A B`: datasets made elsewhere, through the same checks."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from mpsynth.cli import main
from tests.conftest import DEMO_COLUMNS, first_per_platform, write_csv

STRIP = re.compile(r"(?i)(?:https?://|www\.)\S+|#\w+")


@pytest.mark.slow
@pytest.mark.ray
def test_external_datasets_are_evaluated_against_the_real_file(tmp_path, demo_rows, ray_local):
    rows = first_per_platform(demo_rows, 100)
    real = write_csv(tmp_path / "real.csv", rows, DEMO_COLUMNS)
    # the synthetic files name their columns their own way: mapped on the command line
    mapped = ["site", "body"]
    copy = write_csv(
        tmp_path / "copy.csv", [{"site": r["platform"], "body": r["text"]} for r in rows], mapped
    )
    stripped_rows = [
        {"site": r["platform"], "body": STRIP.sub("", r["text"]).strip() or "."} for r in rows
    ]
    stripped_rows.append({"site": "twitter", "body": "  "})  # quarantined, not lost
    stripped = write_csv(tmp_path / "stripped.csv", stripped_rows, mapped)
    out = tmp_path / "run"
    code = main(
        [
            "evaluate",
            "--real",
            str(real),
            "--synthetic",
            str(copy),
            str(stripped),
            "--synthetic-column",
            "text=body",
            "--synthetic-column",
            "platform=site",
            "--out",
            str(out),
            "--set",
            "embed.embedder.dimensions=32",
            "--set",
            "topics.min_cluster_size=8",
            "--set",
            "evaluate.embedder=null",  # the run's LSA space (MiniLM's is tested in test_pipeline)
        ]
    )
    assert code == 0
    metrics = {
        (m["dataset"], m["metric"]): m["value"]
        for m in pq.read_table(out / "evaluate" / "metrics.parquet").to_pylist()
        if m["platform"] == "all"
    }
    # every post a real one, the held-out ones included; it holds every hashtag of the reference
    # it is measured against, and more than a held-out real sample does
    assert metrics[("copy", "exact_copy_share")] == 1.0
    assert (
        metrics[("copy", "hashtag_set_overlap")] > metrics[("real-holdout", "hashtag_set_overlap")]
    )
    assert ("copy", "dcr_nearer_reference_share") not in metrics  # made elsewhere: no DCR test
    assert metrics[("stripped", "share_with_hashtags")] == 0.0
    assert ("copy", "near_copy_of_examples_share") not in metrics  # no record of examples shown
    assert pq.read_table(out / "postprocess" / "quarantine-stripped.parquet")[
        "reason"
    ].to_pylist() == ["empty text"]
    assert (out / "report" / "report.html").is_file()
    card = (out / "report" / "dataset_card.md").read_text()
    assert "Post-processing and privacy steps" not in card  # made elsewhere: no such steps ran


def test_evaluate_needs_a_config_or_files(capsys):
    assert main(["evaluate"]) == 2
    assert "give a CONFIG, or --real and --synthetic" in capsys.readouterr().err


def test_every_bad_synthetic_file_is_reported_at_once(tmp_path, demo_rows, capsys):
    real = write_csv(tmp_path / "real.csv", demo_rows[:50], DEMO_COLUMNS)
    no_text = write_csv(tmp_path / "no_text.csv", demo_rows[:5], ["platform", "id"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    good = write_csv(tmp_path / "good.csv", demo_rows[:5], DEMO_COLUMNS)
    argv = ["evaluate", "--real", str(real), "--synthetic", str(no_text), str(good), str(empty)]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "2 of 3 synthetic datasets cannot be read" in err
    assert f"{no_text}: no column 'text'" in err and f"no rows in {empty}" in err
    assert not (tmp_path / "run").exists()


def test_synthetic_column_mapping_is_checked(tmp_path, demo_rows, capsys):
    real = write_csv(tmp_path / "real.csv", demo_rows[:50], DEMO_COLUMNS)
    argv = ["evaluate", "--real", str(real), "--synthetic", str(real)]
    assert main([*argv, "--synthetic-column", "txt=body"]) == 2
    assert "--synthetic-column 'txt=body': expected FIELD=COLUMN" in capsys.readouterr().err
