"""Interaction and engagement columns: the kind of each post (an original, a repost, a quote, a
reply, a comment) in one vocabulary across platforms, and engagement counts as non-negative
integers. A value that fits neither is nulled and counted (the post itself is kept)."""

from __future__ import annotations

import re

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
