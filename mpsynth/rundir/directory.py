"""The run directory: one folder per stage, the resolved config, and a manifest of what ran.

A stage writes into a hidden scratch folder that is renamed into place only when the stage succeeds,
so a crash never leaves a half-written stage that a re-run would mistake for a finished one. A run
directory on object storage is worked on through a local mirror (mpsynth.rundir.storage): each finished
stage is pushed, then the manifest that commits it.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mpsynth import __version__
from mpsynth.core.errors import StageError
from mpsynth.core.locations import is_remote
from mpsynth.rundir.storage import RemoteRun

MANIFEST = "manifest.json"
LOCK = ".lock"
RESOLVED_CONFIG = "config.yaml"
_VERSIONED = ("pyarrow", "ray", "bertopic", "umap-learn", "hdbscan", "scikit-learn", "numpy")


def package_versions() -> dict[str, str]:
    versions = {"mpsynth": __version__, "python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _write_json_atomic(path: Path, payload: Any) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(scratch, path)


class RunDirectory:
    def __init__(self, root: Path, remote: RemoteRun | None = None) -> None:
        # absolute from the start: stage paths travel to Ray workers, whose working directory
        # need not be the driver's
        self.root = Path(root).resolve()
        self.remote = remote  # a run directory on object storage, `root` its local mirror

    @classmethod
    def open(cls, location: Path | str, pull: bool = True) -> RunDirectory:
        """A local run directory, or the mirror of a remote one, brought up to date with it."""
        if not is_remote(location):
            return cls(Path(location))
        remote = RemoteRun(str(location))
        if pull:
            remote.pull(MANIFEST)
        return cls(remote.local, remote)

    @property
    def location(self) -> str:
        """Where the run directory is, as the user named it."""
        return self.remote.uri if self.remote else str(self.root)

    def _push(self, path: Path) -> None:
        if self.remote is not None and path.is_file():
            self.remote.push_file(path)

    def push_log(self) -> None:
        from mpsynth.core.console import LOG_FILE

        self._push(self.root / LOG_FILE)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the run directory for one process at a time (released by the OS if it dies), so two
        runs can never write the same stages or ledger."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                raise StageError(
                    f"run directory {self.root} is in use by another mpsynth process "
                    f"(pid {handle.read().strip() or '?'})"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def claimed(self) -> Iterator[None]:
        """`exclusive`, and a folder this run created is removed again if the run fails before any
        stage is committed: a bad input leaves no skeleton behind."""
        fresh = not self.root.exists()
        try:
            with self.exclusive():
                yield
        except BaseException:
            if fresh and not self.manifest()["stages"]:
                shutil.rmtree(self.root, ignore_errors=True)
            raise

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def manifest(self) -> dict[str, Any]:
        if not self.manifest_path.is_file():
            return {"stages": {}}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def is_current(self, stage: str, stage_fingerprint: str) -> bool:
        entry = self.manifest()["stages"].get(stage)
        return (
            entry is not None
            and entry.get("fingerprint") == stage_fingerprint
            and self.stage_dir(stage).is_dir()
        )

    def initialise(self, config_yaml: str, config_hash: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / RESOLVED_CONFIG).write_text(config_yaml, encoding="utf-8")
        manifest = self.manifest()
        manifest.update(config_hash=config_hash, versions=package_versions(), updated=_now())
        manifest.setdefault("created", _now())
        _write_json_atomic(self.manifest_path, manifest)
        self._push(self.root / RESOLVED_CONFIG)
        self._push(self.manifest_path)

    @contextmanager
    def writing(self, stage: str) -> Iterator[Path]:
        """Yield a scratch folder for the stage's outputs; it replaces the stage folder on success."""
        scratch = self.root / f".{stage}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            yield scratch
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        final = self.stage_dir(stage)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(scratch, final)

    def record(
        self, stage: str, stage_fingerprint: str, started: float, rows: dict[str, int], **extra: Any
    ) -> None:
        manifest = self.manifest()
        manifest["stages"][stage] = {
            "fingerprint": stage_fingerprint,
            "rows": rows,
            "seconds": round(time.perf_counter() - started, 3),
            "finished": _now(),
            **extra,
        }
        manifest["updated"] = _now()
        _write_json_atomic(self.manifest_path, manifest)
        if self.remote is not None:  # the stage's files first; the manifest commits them
            self.remote.push_stage(stage)
            self.remote.push_file(self.manifest_path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
