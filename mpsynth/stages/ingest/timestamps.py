"""Timestamps as the platforms and research releases write them, parsed to UTC.

Accepted: ISO 8601 (date, date and time, `T` or a space between, fractional seconds, `Z` or an
offset), Unix epoch seconds or milliseconds (told apart by size), Twitter's API form
(`Wed Oct 10 20:19:24 +0000 2018`), RFC 2822 (`Wed, 10 Oct 2018 20:19:24 GMT`) and the US
spreadsheet forms `9/11/2017 21:26` and `9/11/2017 9:26 PM` (FiveThirtyEight's IRA release).
A value without a zone is read as UTC. What none of these reads is None: the row is kept and the
value counted as unparsed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_EPOCH = re.compile(r"^-?\d{9,14}(\.\d+)?$")
_MILLISECONDS_ABOVE = 1e11  # 1e11 s is the year 5138; 1e11 ms is 1973
_FORMATS = (
    "%a %b %d %H:%M:%S %z %Y",  # Twitter API v1.1
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
)
# dates outside this range are a misread column (a count, an id), not a post's time
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_MEMO_LIMIT = 100_000


def parse_timestamp(value: str | None) -> datetime | None:
    """`value` as an aware UTC datetime, or None when it is empty or no known form reads it."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = _parse(value)
    if parsed is None:
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return parsed if _EARLIEST <= parsed < _LATEST else None


def _parse(value: str) -> datetime | None:
    if _EPOCH.match(value):
        seconds = float(value)
        if abs(seconds) >= _MILLISECONDS_ABOVE:
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    for form in _FORMATS:
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


class TimestampParser:
    """parse_timestamp with a memo (posts of one minute share their value) and counts per file."""

    def __init__(self) -> None:
        self._memo: dict[str, datetime | None] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def __call__(self, value: str | None, file: str) -> datetime | None:
        counts = self.counts.setdefault(file, {"parsed": 0, "unparsed": 0, "missing": 0})
        if value is None or not value.strip():
            counts["missing"] += 1
            return None
        if value not in self._memo:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[value] = parse_timestamp(value)
        parsed = self._memo[value]
        counts["parsed" if parsed is not None else "unparsed"] += 1
        return parsed
