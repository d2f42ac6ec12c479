"""Interaction and engagement columns: the kind of each post (an original, a repost, a quote, a
reply, a comment) in one vocabulary across platforms, and engagement counts as non-negative
integers. A value that fits neither is nulled and counted (the post itself is kept)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from mpsynth.core.schema import ENGAGEMENT

log = logging.getLogger(__name__)

# what platforms and datasets call each kind -> mpsynth's name
KINDS = {
    "original": "original",
    "post": "original",
    "tweet": "original",
    "status": "original",
    "submission": "original",
    "video": "original",
    "message": "original",
    "repost": "repost",
    "retweet": "repost",
    "rt": "repost",
    "share": "repost",
    "reshare": "repost",
    "forward": "repost",
    "forwarded": "repost",
    "reblog": "repost",
    "boost": "repost",
    "quote": "quote",
    "quote_tweet": "quote",
    "quoted": "quote",
    "quote_post": "quote",
    "reply": "reply",
    "comment": "comment",
}
# a yes/no column (Telegram's is_forward): yes is a reshare, no an original
FLAGS = {"true": "repost", "1": "repost", "yes": "repost", "false": "original", "0": "original",
         "no": "original"}  # fmt: skip
# net votes (Reddit's score) may be negative; every other count may not
SIGNED = frozenset({"votes"})
_COUNT = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*([kKmMbB]?)$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


def post_kind(value: str | None) -> tuple[str | None, bool]:
    """(mpsynth's kind, or None; whether the value was given but is no kind mpsynth knows)."""
    if value is None or not value.strip():
        return None, False
    key = re.sub(r"[\s-]+", "_", value.strip().lower())
    kind = KINDS.get(key) or FLAGS.get(key)
    return kind, kind is None


def engagement_count(value: str | None, name: str) -> tuple[int | None, bool]:
    """(the count, or None; whether the value was given but is not a count). Thousands separators
    and a K/M/B suffix are read ("1,204", "3.4K"); a fraction that is no whole count, a negative
    count (but net votes) or text is not a count."""
    if value is None or not value.strip():
        return None, False
    found = _COUNT.match(value.strip().replace(",", "").replace("_", ""))
    if found is None:
        return None, True
    number = float(found.group(1)) * _SCALE[found.group(2).lower()]
    if number != int(number) or (number < 0 and name not in SIGNED):
        return None, True
    return int(number), False


class InteractionReader:
    """Each post's kind and engagement counts from its raw fields, and per platform how many posts
    carry each, and how many values were no kind or no count (nulled, the post kept)."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}  # platform -> kinds, counts carried, odd values
        self.unknown_kinds: set[str] = set()  # a few of them, for the warning

    def read(self, fields: dict[str, str | None], platform: str) -> dict[str, Any]:
        counts = self.counts.setdefault(platform, Counter())
        kind, unknown = post_kind(fields.get("post_kind"))
        counts["unknown_kind"] += unknown
        if unknown and len(self.unknown_kinds) < 5:
            self.unknown_kinds.add(str(fields["post_kind"]))
        if kind is not None:
            counts[f"kind_{kind}"] += 1
        found: dict[str, Any] = {"post_kind": kind}
        for name in ENGAGEMENT:
            found[name], bad = engagement_count(fields.get(name), name)
            counts[f"bad_{name}"] += bad
            counts[f"with_{name}"] += found[name] is not None
        return found

    def summary(self, platform: str) -> dict[str, int]:
        """The platform's non-zero counts (kind_*, with_*, bad_*, unknown_kind)."""
        return {k: n for k, n in sorted(self.counts.get(platform, Counter()).items()) if n}

    def warn(self) -> None:
        """One line for each column whose values were not usable."""
        total: Counter = Counter()
        for counts in self.counts.values():
            total.update(counts)
        if total["unknown_kind"]:
            log.warning(
                "ingest: %d post%s of a kind mpsynth does not know (%s...), kept with post_kind "
                "null; known: %s",
                total["unknown_kind"],
                "" if total["unknown_kind"] == 1 else "s",
                ", ".join(sorted(repr(k) for k in self.unknown_kinds)),
                ", ".join(sorted(KINDS)),
            )
        for name in ENGAGEMENT:
            if total[f"bad_{name}"]:
                log.warning(
                    "ingest: %d %s values that are no count (negative, fractional or text), kept "
                    "as null",
                    total[f"bad_{name}"],
                    name,
                )
