"""Timestamps as the platforms and research releases write them, parsed to UTC.

Accepted: ISO 8601 (date, date and time, `T` or a space between, fractional seconds, `Z` or an
offset), Unix epoch seconds or milliseconds (told apart by size), Twitter's API form
(`Wed Oct 10 20:19:24 +0000 2018`), RFC 2822 (`Wed, 10 Oct 2018 20:19:24 GMT`) and the
spreadsheet forms `9/11/2017 21:26` and `9/11/2017 9:26 PM` (FiveThirtyEight's IRA release).
A value without a zone is read as UTC. What none of these reads is None: the row is kept and the
value counted as unparsed.

Whether `11/08/2017` is 11 August or 8 November is a column's convention, not the value's: the
column's unambiguous values decide (`18/10/2015` proves day first, `10/18/2015` month first), or
`ingest.inputs[].dayfirst` says. A value the evidence cannot place is read month first (the US
spreadsheet form) and counted as ambiguous, with a warning; never in silence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_EPOCH = re.compile(r"^-?\d{9,14}(\.\d+)?$")
_MILLISECONDS_ABOVE = 1e11  # 1e11 s is the year 5138; 1e11 ms is 1973
_FORMATS = (
    "%a %b %d %H:%M:%S %z %Y",  # Twitter API v1.1
    "%d.%m.%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
)
_SLASHED = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y",
)
_DAY_FIRST = tuple(form.replace("%m/%d", "%d/%m") for form in _SLASHED)
# the two leading numbers of a slashed date: which is the day can be told when one exceeds 12
_SLASHED_DATE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/\d{4}\b")
# dates outside this range are a misread column (a count, an id), not a post's time
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_MEMO_LIMIT = 100_000


def parse_timestamp(value: str | None, dayfirst: bool = False) -> datetime | None:
    """`value` as an aware UTC datetime, or None when it is empty or no known form reads it;
    `dayfirst`: how a slashed date that fits both orders is read (one that fits only one order is
    read in that one)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = _parse(value, dayfirst)
    if parsed is None:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed if _EARLIEST <= parsed < _LATEST else None


def _parse(value: str, dayfirst: bool) -> datetime | None:
    if _EPOCH.match(value):
        seconds = float(value)
        if abs(seconds) >= _MILLISECONDS_ABOVE:
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    slashed = (*_DAY_FIRST, *_SLASHED) if dayfirst else (*_SLASHED, *_DAY_FIRST)
    for form in (*_FORMATS, *slashed):
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def day_order(values: list[str | None]) -> tuple[int, int, int]:
    """(values proving day first, values proving month first, values that fit both) among a
    column's slashed dates; a day equal to its month fits both the same way."""
    day = month = both = 0
    for value in values:
        match = _SLASHED_DATE.match(value) if value else None
        if match is None:
            continue
        first, second = int(match.group(1)), int(match.group(2))
        if first > 12 >= second:
            day += 1
        elif second > 12 >= first:
            month += 1
        elif first != second and first <= 12 and second <= 12:
            both += 1
    return day, month, both


class TimestampParser:
    """parse_timestamp with a memo (posts of one minute share their value) and counts per file;
    `order(file, values, dayfirst)` settles a file's day/month order before its rows are read."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, bool], datetime | None] = {}
        self.counts: dict[str, dict[str, int | str]] = {}
        self._dayfirst: dict[str, bool] = {}

    def order(self, file: str, values: list[str | None], dayfirst: bool | None) -> str | None:
        """Decide how the file's ambiguous slashed dates are read: as `dayfirst` says, else as the
        file's unambiguous ones prove (the majority), else month first. Returns a warning for
        ambiguous dates read with no evidence or against the evidence, else None."""
        day, month, both = day_order(values)
        if not (day or month or both):  # no slashed dates: nothing to decide
            self._dayfirst[file] = bool(dayfirst)
            return None
        counts = self._counts(file)
        counts["ambiguous_dates"] = both
        if dayfirst is not None:
            chosen, why = dayfirst, "ingest.inputs[].dayfirst"
        elif day or month:
            chosen, why = day > month, f"{max(day, month):,} dates that fit only that order"
        else:
            chosen, why = False, "no evidence"
        self._dayfirst[file] = chosen
        counts["date_order"] = "day first" if chosen else "month first"
        if not both:
            return None
        counts["date_order_from"] = why
        if dayfirst is None and not (day or month):
            return (
                f"{file}: {both:,} dates such as {_example(values)} fit both day/month orders and "
                "no date in the file tells which; read month first (set ingest.inputs[].dayfirst)"
            )
        if day and month:
            return (
                f"{file}: dates of both orders ({day:,} day first, {month:,} month first); "
                f"{both:,} that fit both read {counts['date_order']} ({why})"
            )
        return None

    def _counts(self, file: str) -> dict:
        return self.counts.setdefault(file, {"parsed": 0, "unparsed": 0, "missing": 0})

    def __call__(self, value: str | None, file: str) -> datetime | None:
        counts = self._counts(file)
        if value is None or not value.strip():
            counts["missing"] += 1
            return None
        key = (value, self._dayfirst.get(file, False))
        if key not in self._memo:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = parse_timestamp(*key)
        parsed = self._memo[key]
        counts["parsed" if parsed is not None else "unparsed"] += 1
        return parsed


def _example(values: list[str | None]) -> str:
    for value in values:
        match = _SLASHED_DATE.match(value) if value else None
        if match and match.group(1) != match.group(2):
            return repr(value.strip())
    return "?"
