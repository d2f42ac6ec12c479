"""The generation ledger: every finished request as a row, in a write-ahead log the moment its answer
is in (so no paid answer is lost when a process dies), then in Parquet part files (each written to a
scratch name, then renamed, so a crash leaves whole parts only).

A re-run reads the ledger and skips every request id that already succeeded; ids hash everything
that shapes a response, so a changed parameter can never return a stale answer.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Protocol, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.core import schema

log = logging.getLogger(__name__)


class Mirror(Protocol):
    """Where a ledger's files go besides the local folder, each the moment it is written (a remote
    run directory's ledger: mpsynth.rundir.storage.LedgerMirror)."""

    def push(self, local: Path) -> None: ...

    def remove(self, local: Path) -> None: ...


class Lease:
    """Which run owns a ledger now. A new run takes the lease; workers of an earlier run (a killed
    driver's actors live on for a few seconds) see it gone and stop launching and writing."""

    FILE = "LEASE"

    def __init__(self, directory: Path, token: str) -> None:
        self.path = Path(directory) / self.FILE
        self.token = token

    def take(self) -> bool:
        """Take the lease; True when another run still held it (a driver that died: its workers may
        still be finishing)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = self.path.read_text() if self.path.is_file() else None
        scratch = self.path.with_name(f".{self.FILE}.{self.token}.tmp")
        scratch.write_text(self.token)
        os.replace(scratch, self.path)
        return previous is not None and previous != self.token

    def release(self) -> None:
        """Give the lease up after a run whose workers are all stopped (the next run need not wait
        for stragglers)."""
        if self.held():
            self.path.unlink(missing_ok=True)

    def held(self) -> bool:
        try:
            return self.path.read_text() == self.token
        except FileNotFoundError:
            return False


WAL_PUSH_S = 1.0  # a remote run directory's copy of a write-ahead log trails it by at most this


class LedgerWriter:
    """A writer's rows: each appended to a write-ahead log (one JSON line, flushed to the operating
    system) the moment it is added, so an answer survives its process being killed; every
    `flush_every` rows or `flush_interval_s` the buffered rows become one Parquet part file and
    their log is removed. A log with no part (the writer died) is turned into its part by
    `recover` when the next run takes the ledger.

    With a mirror (a remote run directory) the log goes up too, at most WAL_PUSH_S after an
    answer is added (with the next answer, so a pause in the answers holds the last ones back
    until answers resume or the buffer is flushed), so a lost machine takes at most the answers of
    its last second, besides those in flight; the remote log is removed once its part is up."""

    def __init__(
        self,
        directory: Path,
        flush_every: int = 32,
        flush_interval_s: float = 2.0,
        lease: Lease | None = None,
        mirror: Mirror | None = None,
    ) -> None:
        self.lease = lease  # a run that lost the lease writes nothing more
        self.mirror = mirror  # a remote run directory's ledger: each part goes up once written
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self.prefix = uuid.uuid4().hex[:12]  # unique per writer: actors never share a file
        self.sequence = 0
        self.buffer: list[dict] = []
        self.last_flush = time.monotonic()
        self.wal_pushed = 0.0  # when the log last went to the mirror
        self._log: TextIO | None = None

    def _name(self, kind: str) -> Path:
        suffix = "parquet" if kind == "part" else "jsonl"
        return self.directory / f"{kind}-{self.prefix}-{self.sequence:06d}.{suffix}"

    def add(self, row: dict) -> None:
        if self.lease is not None and not self.lease.held():
            return  # a newer run owns the ledger and will ask for this request itself
        if self._log is None:
            self._log = self._name("wal").open("a", encoding="utf-8")
        self._log.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._log.flush()  # in the operating system's hands: survives this process
        self.buffer.append(row)
        if self.mirror is not None and time.monotonic() - self.wal_pushed >= WAL_PUSH_S:
            self.wal_pushed = time.monotonic()
            self.mirror.push(self._name("wal"))  # survives this machine
        if (
            len(self.buffer) >= self.flush_every
            or time.monotonic() - self.last_flush >= self.flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.buffer:
            return
        if self.lease is not None and not self.lease.held():
            # a newer run took the ledger: it recovers this writer's log itself
            self.buffer = []
            return
        _write_part(self.buffer, self._name("part"))
        if self.mirror is not None:
            self.mirror.push(self._name("part"))
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.mirror is not None and self.wal_pushed:
            self.mirror.remove(self._name("wal"))  # its rows are in the part pushed above
        self._name("wal").unlink(missing_ok=True)
        self.sequence += 1
        self.buffer = []


def _write_part(rows: list[dict], final: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=schema.COMPLETIONS)
    scratch = final.with_name(f".{final.name}.tmp")
    pq.write_table(schema.described(table), scratch)
    os.replace(scratch, final)


def recover(directory: Path, mirror: Mirror | None = None) -> int:
    """Turn the write-ahead logs of writers that died into part files (a torn last line, cut by
    the kill, is left out); the number of rows recovered. Call it holding the lease, after the
    grace period, when no writer of an earlier run can still add to them."""
    directory = Path(directory)
    recovered = 0
    for wal in sorted(directory.glob("wal-*.jsonl")) if directory.is_dir() else []:
        part = wal.with_name(f"part-{wal.name[len('wal-') : -len('.jsonl')]}.parquet")
        if not part.exists():
            rows = []
            for line in wal.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            if rows:
                _write_part(rows, part)
                if mirror is not None:
                    mirror.push(part)
                recovered += len(rows)
        if mirror is not None:
            mirror.remove(wal)  # a copy pushed before its writer died
        wal.unlink(missing_ok=True)  # its rows are in the part
    return recovered


LEASE_GRACE_S = 1.0  # after taking over a ledger from a run that still held it, before reading


def take_over(directory: Path, mirror: Mirror | None = None) -> Lease:
    """The ledger for this run: its lease taken (workers of an earlier, dead driver stop launching
    and writing from here), a grace second when that run still held it (a write that passed its
    lease check just before lands first), then the write-ahead logs of writers that died turned
    into parts, so the ledger read next holds every answer ever received."""
    lease = Lease(directory, uuid.uuid4().hex)
    if lease.take():
        time.sleep(LEASE_GRACE_S)
    recovered = recover(directory, mirror)
    if recovered:
        log.info("ledger %s: %d answers recovered from an interrupted run", directory, recovered)
    return lease


def read_ledger(directory: Path) -> pa.Table:
    """Every row of every whole part file (an unreadable part is reported and skipped)."""
    tables = []
    for part in sorted(Path(directory).glob("part-*.parquet")) if Path(directory).is_dir() else []:
        try:
            tables.append(pq.read_table(part, schema=schema.COMPLETIONS))
        except (OSError, pa.ArrowException) as error:
            log.warning("ledger part %s is unreadable and is skipped: %s", part, error)
    if not tables:
        return schema.COMPLETIONS.empty_table()
    return pa.concat_tables(tables)


def settled(ledger: pa.Table) -> dict[str, dict]:
    """request id -> its ledger row: the first success if there is one, else the latest failure."""
    best: dict[str, dict] = {}
    rows = sorted(ledger.to_pylist(), key=lambda r: r["finished_at"])
    for row in rows:
        current = best.get(row["request_id"])
        if current is None or (current["status"] != "ok"):
            best[row["request_id"]] = row
    return best


def succeeded_ids(ledger: pa.Table) -> set[str]:
    statuses = ledger.column("status").to_pylist()
    return {
        rid
        for rid, status in zip(ledger.column("request_id").to_pylist(), statuses, strict=True)
        if status == "ok"
    }
