"""Plain progress lines (stdout not a terminal: a log file, CI, `ray job submit`) come by the clock:
a person watching sees the work is alive while it reports nothing."""

from __future__ import annotations

import time

from mpsynth.core.console import Progress
from tests.conftest import logged_lines


def _printed(total: int | None, work) -> list[str]:
    # the progress display closes (its last line) before the capture does
    with (
        logged_lines("mpsynth.progress") as lines,
        Progress("work", total, "rows", interval_s=0.3) as shown,
    ):
        work(shown)
    return lines


def test_a_silent_stretch_still_prints_a_line_each_interval():
    def work(shown):
        shown.update(3)
        time.sleep(1.6)  # a long batch: no report for five intervals
        shown.update(10)

    lines = _printed(10, work)
    stalled = [line for line in lines if line.startswith("work: 3/10 (30%)")]
    assert len(stalled) >= 3, lines  # one per interval, though the count did not move
    assert lines[-1].startswith("work: 10/10 (100%)")


def test_work_without_a_count_says_how_long_it_has_run():
    lines = _printed(None, lambda shown: time.sleep(1.1))
    assert len(lines) >= 2 and all(line.startswith("work: running for ") for line in lines)


def test_slow_work_reads_per_minute_and_fast_work_per_second():
    shown = Progress("work", 10, "comparisons", interval_s=60)
    shown.started = time.monotonic() - 30  # one comparison in 30 s: 2 a minute, not "0.0/s"
    shown.done = 1
    assert shown._rate_text() == "2.0 comparisons/min"
    shown.done = 90
    assert shown._rate_text() == "3.0 comparisons/s"
