"""The CLI at its edges: one clear line for a bad setting or input, nothing left behind, no demand
for keys a command does not use."""

from __future__ import annotations

import json

import pytest
import yaml

from mpsynth.cli import main
from mpsynth.config import load_config
from tests.conftest import DEMO_COLUMNS, REPO, first_per_platform, write_csv


def _config(tmp_path, data, **overrides):
    raw = {"run_dir": str(tmp_path / "run"), "ingest": {"inputs": [{"path": str(data)}]}}
    raw.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_dir_that_is_a_file_is_one_line(tmp_path, demo_rows, capsys):
    data = write_csv(tmp_path / "p.csv", demo_rows[:20], DEMO_COLUMNS)
    config = _config(tmp_path, data)
    (tmp_path / "run").write_text("not a folder")
    assert main(["ingest", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: run_dir: {tmp_path / 'run'} is a file, not a folder\n"


def test_fatal_input_error_leaves_no_run_directory(tmp_path, demo_rows, capsys):
    rows = [{**r, "text": "   "} for r in demo_rows[:10]]  # every row quarantined
    config = _config(tmp_path, write_csv(tmp_path / "blank.csv", rows, DEMO_COLUMNS))
    assert main(["ingest", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"no usable posts in {tmp_path / 'blank.csv'}: every row was quarantined" in err
    assert not (tmp_path / "run").exists()


def test_a_failed_rerun_keeps_the_run_directory_it_found(tmp_path, demo_rows):
    data = write_csv(tmp_path / "p.csv", demo_rows[:20], DEMO_COLUMNS)
    config = _config(tmp_path, data)
    assert main(["ingest", str(config)]) == 0
    write_csv(data, [{**r, "text": ""} for r in demo_rows[:20]], DEMO_COLUMNS)
    assert main(["ingest", str(config)]) == 2
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["stages"]["ingest"]["rows"]["posts"] == 20  # the earlier result is intact


def test_ingest_does_not_demand_a_key_it_does_not_use(tmp_path, demo_rows, monkeypatch):
    monkeypatch.delenv("MPSYNTH_TEST_ABSENT_KEY", raising=False)
    data = write_csv(tmp_path / "p.csv", first_per_platform(demo_rows, 5), DEMO_COLUMNS)
    generator = {
        "name": "hosted",
        "provider": {"kind": "openai", "model": "m", "api_key_env": "MPSYNTH_TEST_ABSENT_KEY"},
    }
    config = _config(tmp_path, data, generate={"generators": [generator]})
    assert main(["ingest", str(config)]) == 0
    assert (tmp_path / "run" / "ingest" / "posts.parquet").is_file()


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ("goemotions_multilabel.yaml", "--set ingest.inputs.0.path=tests/data/goemotions.csv"),
        ("politics.yaml", "--set ingest.inputs.0.path=tests/data/ira_tweets.csv"),
    ],
)
def test_a_shipped_config_without_its_shared_data_names_the_bundled_sample(
    tmp_path, monkeypatch, capsys, config, says
):
    """On a clone with nothing beside it, a config that reads the shared data stops before any work
    naming every missing file, where it looked, and the bundled sample that stands in."""
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("configs", "tests"):
        (clone / name).symlink_to(REPO / name)
    monkeypatch.chdir(clone)
    assert main(["ingest", f"configs/{config}", "--set", f"run_dir={tmp_path / 'run'}"]) != 0
    err = capsys.readouterr().err
    for spec in load_config(REPO / "configs" / config).ingest.inputs:  # each input it names
        assert f"input not found: {spec.path} (looked in {clone}" in err
    assert says in err
    assert not (tmp_path / "run").exists()
