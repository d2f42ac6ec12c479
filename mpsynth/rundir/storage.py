"""Inputs and run directories on object storage (`s3://`, `gs://`, and any other filesystem pyarrow
knows by URI), worked on through a local mirror.

A remote run directory is mirrored under `$MPSYNTH_CACHE/runs/` (default ~/.cache/mpsynth): a run
first pulls what the remote holds (the manifest, finished stages, the ledger and its batch records),
works on the mirror exactly as on a local run directory, and pushes as it goes: a stage's files once
the stage succeeds, then the manifest (the commit point: a stage counts as done only when the remote
manifest says so), every ledger part and batch record the moment it is written, and each
write-ahead log at most a second behind its answers, so paid-for answers outlive the machine. Object stores publish an object whole or not at all, so each push is a
write of the final name, never a half-written file; on filesystems that can rename, a scratch name
is written and moved into place. A remote input is downloaded once into `$MPSYNTH_CACHE/inputs/`
with the remote file's modification time, so its fingerprint is the same on every machine.

Credentials come from the filesystem's own environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...)
and are never written anywhere by mpsynth.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from mpsynth.core.locations import cache_root, download, filesystem

log = logging.getLogger(__name__)
ATOMIC_PUT = ("s3", "gs", "gcs")  # object stores: a written object appears whole or not at all


class RemoteRun:
    """A run directory on a remote filesystem and its local mirror."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.fs, self.base = filesystem(self.uri, "run_dir")
        self.atomic_put = self.fs.type_name in ATOMIC_PUT
        self.local = cache_root() / "runs" / hashlib.sha256(self.uri.encode()).hexdigest()[:16]

    def remote_path(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def pull(self, manifest: str) -> None:
        """Bring the mirror up to the remote: every remote file the mirror lacks or holds at another
        size, and the remote's manifest over the mirror's (the remote is the record of what ran)."""
        self.local.mkdir(parents=True, exist_ok=True)
        selector = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        remote = {
            info.path[len(self.base) + 1 :]: info
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        }
        for relative, info in remote.items():
            local = self.local / relative
            if relative == manifest or not local.is_file() or local.stat().st_size != info.size:
                download(self.fs, info.path, local, info.mtime_ns)
        if manifest not in remote:
            (self.local / manifest).unlink(missing_ok=True)  # nothing is committed remotely
        # ledger parts written here but never pushed (a crash between the two) go up now
        for part in self._ledger_files():
            relative = part.relative_to(self.local).as_posix()
            if relative not in remote:
                self.push_file(part)
        log.info(
            "run directory %s mirrored at %s (%d remote files)", self.uri, self.local, len(remote)
        )

    def _ledger_files(self) -> list[Path]:
        ledger = self.local / "ledger"
        if not ledger.is_dir():
            return []
        return [
            p
            for p in ledger.rglob("*")
            if p.is_file()
            and (p.name.startswith("part-") or p.parent.name == "batches")
            and not p.name.startswith(".")
        ]

    def push_file(self, local: Path) -> None:
        """One file of the mirror to its place in the remote run directory."""
        relative = Path(local).resolve().relative_to(self.local.resolve()).as_posix()
        final = self.remote_path(relative)
        target = final if self.atomic_put else f"{final}.{uuid.uuid4().hex[:8]}.tmp"
        self.fs.create_dir(str(Path(final).parent), recursive=True)
        with Path(local).open("rb") as source, self.fs.open_output_stream(target) as sink:
            shutil.copyfileobj(source, sink, length=8 << 20)
        if target != final:
            self.fs.move(target, final)

    def remove_file(self, local: Path) -> None:
        """The remote copy of one mirror file, deleted (nothing when there is none)."""
        relative = Path(local).resolve().relative_to(self.local.resolve()).as_posix()
        final = self.remote_path(relative)
        if self.fs.get_file_info(final).type == pafs.FileType.File:
            self.fs.delete_file(final)

    def push_stage(self, stage: str) -> None:
        """A finished stage's folder, replacing what the remote held for it (the manifest that
        commits it goes up after, through push_file)."""
        remote = self.remote_path(stage)
        if self.fs.get_file_info(remote).type == pafs.FileType.Directory:
            self.fs.delete_dir(remote)
        for path in sorted((self.local / stage).rglob("*")):
            if path.is_file():
                self.push_file(path)


class LedgerMirror:
    """Where a ledger's files go besides the local folder: the remote run directory's ledger.
    Picklable (it travels to the worker actors as the remote URI)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._run: RemoteRun | None = None

    def push(self, local: Path) -> None:
        if self._run is None:
            self._run = RemoteRun(self.uri)
        self._run.push_file(local)

    def remove(self, local: Path) -> None:
        """The remote copy of a mirror file, gone (nothing when there is none)."""
        if self._run is None:
            self._run = RemoteRun(self.uri)
        self._run.remove_file(local)

    def __getstate__(self) -> dict:
        return {"uri": self.uri}

    def __setstate__(self, state: dict) -> None:
        self.uri, self._run = state["uri"], None
