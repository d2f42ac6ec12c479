"""Reply and quote links as ingest keeps them: ids in one spelling, loops broken, dangling links
counted.

- **Numeric ids.** A column of integer ids with gaps is written by pandas as floats (`12.0`), so a
  `reply_to` of `12.0` would match no post `12`; an id or link that is an integer written with a
  zero fraction is read as the integer.
- **Loops.** A post that answers itself, or a chain that comes back to where it started (`a`
  answers `b`, `b` answers `a`), has no first post; the link that closes the loop is dropped and
  counted, so every chain ends and a thread's depth is its chain's length.
- **Dangling links.** A `reply_to` or `quote_of` that names no post of the input (a post outside
  the sample, or ids in another spelling) is kept and counted per platform; a platform where more
  than `DANGLING_WARN` of the links dangle gets a warning.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

log = logging.getLogger(__name__)

ZERO_FRACTION = re.compile(r"^(-?\d+)\.0+$")
DANGLING_WARN = 0.5


def numeric_id(value: str | None) -> str | None:
    """`12.0` -> `12`; anything else as it is."""
    if value is None:
        return None
    match = ZERO_FRACTION.match(value)
    return match.group(1) if match else value


def break_loops(ids: list[str], reply_to: list[str | None]) -> tuple[list[str | None], dict]:
    """`reply_to` with every self-reply and the closing link of every cycle removed, and the rows
    whose link was dropped (row -> `self_replies` or `reply_loops`). Walks each chain once, in
    input order."""
    links = list(reply_to)
    row_of = {post: row for row, post in enumerate(ids)}
    dropped = {}
    for row, post in enumerate(ids):
        if links[row] == post:
            links[row], dropped[row] = None, "self_replies"
    state = [0] * len(ids)  # 0: not seen, 1: on the chain being walked, 2: done
    for start in range(len(ids)):
        path, row = [], start
        while row is not None and state[row] == 0:
            state[row] = 1
            path.append(row)
            parent = links[row]
            row = row_of.get(parent) if parent is not None else None
        if row is not None and state[row] == 1:  # came back to the chain: a loop
            links[path[-1]], dropped[path[-1]] = None, "reply_loops"
        for visited in path:
            state[visited] = 2
    return links, dropped


def link_counts(
    ids: list[str], platforms: list[str], links: dict[str, list[str | None]]
) -> dict[str, Counter]:
    """Per platform: links of each field, and those that name no post (`dangling_<field>`)."""
    known = set(ids)
    counts: dict[str, Counter] = {}
    for field, values in links.items():
        for platform, value in zip(platforms, values, strict=True):
            if value is None:
                continue
            mine = counts.setdefault(platform, Counter())
            mine[field] += 1
            mine[f"dangling_{field}"] += value not in known
    return counts


def repair_links(kept: dict[str, list]) -> dict[str, Counter]:
    """Break reply loops in the kept posts (in place) and count, per platform, the links dropped
    (`self_replies`, `reply_loops`) and the links naming no post (`dangling_reply_to`,
    `dangling_quote_of`; warned above a share)."""
    ids, platforms = kept["id"], kept["platform"]
    kept["reply_to"], dropped = break_loops(ids, kept["reply_to"])
    counts = link_counts(ids, platforms, {f: kept[f] for f in ("reply_to", "quote_of")})
    for row, reason in dropped.items():
        counts.setdefault(platforms[row], Counter())[reason] += 1
    if dropped:
        log.warning(
            "ingest: %d posts answered themselves or closed a reply loop (%s); their reply_to "
            "links were dropped, so every thread has a first post",
            len(dropped),
            ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in Counter(dropped.values()).items()),
        )
    for platform, mine in sorted(counts.items()):
        for name in ("reply_to", "quote_of"):
            if mine[name] and mine[f"dangling_{name}"] > DANGLING_WARN * mine[name]:
                log.warning(
                    "ingest: %s: %d of %d %s links name no post of the input (posts outside "
                    "the sample, or ids spelled differently)",
                    platform,
                    mine[f"dangling_{name}"],
                    mine[name],
                    name,
                )
    return counts
