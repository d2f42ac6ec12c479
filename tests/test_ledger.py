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


def test_an_answer_written_before_a_takeover_is_kept_once_and_none_after_it(tmp_path):
    """A dead driver's worker wrote an answer (under its lease) and then a new run took over: the
    new run recovers that answer from the write-ahead log instead of asking for it again, and the
    old worker writes nothing more, so no request is recorded twice."""
    from mpsynth.generation.ledger import Lease, recover

    old = Lease(tmp_path, "old")
    assert old.take() is False  # nobody held it
    writer = LedgerWriter(tmp_path, flush_every=1000, flush_interval_s=3600, lease=old)
    writer.add(ledger_row("a"))
    assert read_ledger(tmp_path).num_rows == 0  # in the write-ahead log only
    new = Lease(tmp_path, "new")
    assert new.take() is True  # the old run never released it: its workers may still write
    assert recover(tmp_path) == 1
    writer.add(ledger_row("b"))  # after the takeover: never written
    writer.flush()
    assert read_ledger(tmp_path).column("request_id").to_pylist() == ["a"]
    assert recover(tmp_path) == 0 and not list(tmp_path.glob("wal-*"))
    new.release()
    assert not new.held() and Lease(tmp_path, "next").take() is False


def test_a_writer_killed_mid_buffer_loses_no_answer(tmp_path):
    """Each answer is in the write-ahead log the moment it is added; a part file replaces the log
    at a flush; a log whose writer died becomes its part on recovery (a torn last line left out)."""
    from mpsynth.generation.ledger import recover

    writer = LedgerWriter(tmp_path, flush_every=2, flush_interval_s=3600)
    for request_id in ("a", "b", "c"):  # a and b flushed into a part, c only in the log
        writer.add(ledger_row(request_id))
    assert len(list(tmp_path.glob("part-*.parquet"))) == 1
    (wal,) = tmp_path.glob("wal-*.jsonl")
    with wal.open("a") as torn:
        torn.write('{"request_id": "d", "sta')  # the kill cut this line
    del writer  # killed: no flush
    assert recover(tmp_path) == 1
    assert sorted(read_ledger(tmp_path).column("request_id").to_pylist()) == ["a", "b", "c"]
    assert not list(tmp_path.glob("wal-*"))
