from __future__ import annotations

import time

from mpsynth.generation.ledger import LedgerWriter, read_ledger, settled, succeeded_ids
from tests.conftest import ledger_row


def _row(rid, status, finished_at, text="t"):
    return ledger_row(rid, status, finished_at, text)


def test_rows_flush_into_whole_part_files(tmp_path):
    writer = LedgerWriter(tmp_path, flush_every=2, flush_interval_s=3600)
    writer.add(_row("a", "ok", 1.0))
    assert list(tmp_path.glob("part-*.parquet")) == []  # buffered
    writer.add(_row("b", "failed", 2.0))
    writer.add(_row("c", "ok", 3.0))
    writer.flush()
    assert len(list(tmp_path.glob("part-*.parquet"))) == 2
    assert not list(tmp_path.glob(".*tmp"))
    assert sorted(read_ledger(tmp_path)["request_id"].to_pylist()) == ["a", "b", "c"]


def test_a_damaged_part_is_skipped_not_fatal(tmp_path):
    writer = LedgerWriter(tmp_path, flush_every=1)
    writer.add(_row("a", "ok", 1.0))
    (tmp_path / "part-zzz-000000.parquet").write_bytes(b"PAR1 truncated")
    assert read_ledger(tmp_path)["request_id"].to_pylist() == ["a"]


def test_settled_prefers_the_first_success_over_later_failures():
    writers = [
        _row("a", "failed", 1.0),
        _row("a", "ok", 2.0, "first"),
        _row("a", "ok", 3.0, "second"),
        _row("b", "failed", 1.0),
        _row("b", "failed", 2.0),
    ]
    import pyarrow as pa

    from mpsynth.core import schema

    table = pa.Table.from_pylist(writers, schema=schema.COMPLETIONS)
    best = settled(table)
    assert best["a"]["text"] == "first"
    assert best["b"]["finished_at"] == 2.0
    assert succeeded_ids(table) == {"a"}


def test_time_based_flush(tmp_path):
    writer = LedgerWriter(tmp_path, flush_every=1000, flush_interval_s=0.01)
    writer.add(_row("a", "ok", 1.0))
    time.sleep(0.02)
    writer.add(_row("b", "ok", 2.0))
    assert len(list(tmp_path.glob("part-*.parquet"))) == 1


def test_rows_buffered_by_a_run_that_lost_the_lease_are_never_written(tmp_path):
    """A dead driver's worker may hold answers it checked the lease for before a new run took
    over; the new run asks for those itself, so writing them would record a request twice."""
    from mpsynth.generation.ledger import Lease

    old = Lease(tmp_path, "old")
    assert old.take() is False  # nobody held it
    writer = LedgerWriter(tmp_path, flush_every=1000, flush_interval_s=3600, lease=old)
    writer.add(ledger_row("a"))
    new = Lease(tmp_path, "new")
    assert new.take() is True  # the old run never released it: its workers may still write
    writer.add(ledger_row("b"))
    writer.flush()
    assert read_ledger(tmp_path).num_rows == 0
    new.release()
    assert not new.held() and Lease(tmp_path, "next").take() is False
