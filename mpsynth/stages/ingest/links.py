"""Reply and quote links as ingest keeps them: ids in one spelling, loops broken, dangling links
counted.

- **Numeric ids.** A column of integer ids with gaps is written by pandas as floats (`12.0`), so a
  `reply_to` of `12.0` would match no post `12`; an id or link that is an integer written with a
  zero fraction is read as the integer.
- **Threads by URL.** A link given as a Reddit permalink (`.../r/texas/comments/xsi1b8/...`, as
  MEIU22's `url` column is) names its submission: the link is that id (`xsi1b8`), so mapping
  `thread_id: url` puts every comment in its submission's thread.
- **Loops.** A post that answers (or quotes, or reshares) itself, or a chain that comes back to where
  it started (`a` answers `b`, `b` answers `a`), has no first post; the link that closes the loop
  is dropped and counted, so every chain ends and a thread's depth is its chain's length.
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
# a Reddit permalink names its submission: /r/<subreddit>/comments/<submission id>/...
THREAD_URL = re.compile(r"^https?://(?:[\w-]+\.)?reddit\.com/r/[^/]+/comments/([a-z0-9]+)")
LOOP_NAMES = {
    "reply_to": ("self_replies", "reply_loops"),
    "quote_of": ("self_quotes", "quote_loops"),
}


def numeric_id(value: str | None) -> str | None:
    """`12.0` -> `12`; a thread's URL -> the thread's id; anything else as it is."""
    if value is None:
        return None
    match = ZERO_FRACTION.match(value)
    if match:
        return match.group(1)
    thread = THREAD_URL.search(value)
    return thread.group(1) if thread else value


def break_loops(
    ids: list[str], reply_to: list[str | None], field: str = "reply_to"
) -> tuple[list[str | None], dict]:
    """`reply_to` (or `quote_of`: `field`) with every self-link and the closing link of every
    cycle removed, and the rows whose link was dropped (row -> `self_replies` or `reply_loops`;
    `self_quotes` or `quote_loops`). Walks each chain once, in input order."""
    self_link, loop = LOOP_NAMES[field]
    links = list(reply_to)
    row_of = {post: row for row, post in enumerate(ids)}
    dropped = {}
    for row, post in enumerate(ids):
        if links[row] == post:
            links[row], dropped[row] = None, self_link
    state = [0] * len(ids)  # 0: not seen, 1: on the chain being walked, 2: done
    for start in range(len(ids)):
        path, row = [], start
        while row is not None and state[row] == 0:
            state[row] = 1
            path.append(row)
            parent = links[row]
            row = row_of.get(parent) if parent is not None else None
        if row is not None and state[row] == 1:  # came back to the chain: a loop
            links[path[-1]], dropped[path[-1]] = None, loop
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
    counts: dict[str, Counter] = {}
    broken = []
    for field in ("reply_to", "quote_of"):
        kept[field], dropped = break_loops(ids, kept[field], field)
        for row, reason in dropped.items():
            counts.setdefault(platforms[row], Counter())[reason] += 1
        broken += list(dropped.values())
    for platform, found in link_counts(
        ids, platforms, {f: kept[f] for f in ("reply_to", "quote_of")}
    ).items():
        counts.setdefault(platform, Counter()).update(found)
    if broken:
        log.warning(
            "ingest: %d posts answered or quoted themselves or closed a loop (%s); those links "
            "were dropped, so every thread and every chain of quotes has a first post",
            len(broken),
            ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in Counter(broken).items()),
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
