from __future__ import annotations

import time

import pytest

from mpsynth.core.fingerprint import fingerprint
from mpsynth.rundir.directory import RunDirectory


def test_failed_stage_leaves_nothing_behind(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.initialise("seed: 1\n", "abc")
    with pytest.raises(RuntimeError), run.writing("embed") as out:
        (out / "part.parquet").write_text("half")
        raise RuntimeError("crash")
    assert not run.stage_dir("embed").exists()
    assert sorted(p.name for p in run.root.iterdir()) == ["config.yaml", "manifest.json"]


def test_a_run_directory_is_held_by_one_process_at_a_time(tmp_path):
    import subprocess
    import sys

    from mpsynth.core.errors import StageError

    run = RunDirectory(tmp_path / "run")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from mpsynth.rundir.directory import RunDirectory\n"
            f"with RunDirectory({str(tmp_path / 'run')!r}).exclusive():\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(
                StageError, match=rf"in use by another mpsynth process \(pid {holder.pid}\)"
            ),
            run.exclusive(),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run.exclusive():  # released when its holder died
        pass


def test_finished_stage_is_current_until_its_fingerprint_changes(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.initialise("seed: 1\n", "abc")
    with run.writing("embed") as out:
        (out / "x.txt").write_text("done")
    run.record("embed", "fp1", time.perf_counter(), {"rows": 3})
    assert (run.stage_dir("embed") / "x.txt").read_text() == "done"
    assert run.is_current("embed", "fp1")
    assert not run.is_current("embed", "fp2")
    assert run.manifest()["stages"]["embed"]["rows"] == {"rows": 3}
    assert run.manifest()["versions"]["pyarrow"]


def test_fingerprint_is_order_independent_and_sensitive():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
