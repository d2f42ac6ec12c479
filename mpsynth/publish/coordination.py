"""`mpsynth export-coordination`: a run's sets (and its real posts) in the input format of the
coordination-network-toolkit (Graham et al., QUT Digital Media Research Centre), so a
coordination researcher can build co-link, co-reply, co-retweet and co-tweet networks from them
with the toolkit as it is: `compute_networks DB preprocess --format csv <set>.csv`.

Columns (the toolkit's CSV, version 1.5): message_id, user_id (platform:account, so one name on
two platforms is two users, as in mpsynth's graphs), username, repost_id (the reshared post of a
repost: its `quote_of`, else `text-` and a digest of its text, which is the original's, for inputs
such as the IRA tweets that name no retweeted id), reply_id (the answered post; for a comment that
names only its thread, the thread's first post), message, timestamp (epoch seconds),
urls (space-separated, as mpsynth's extraction finds them). A post without an account or a time cannot be placed in any network: it
is left out and counted.

The toolkit reads a post without URLs as sharing the URL "" (its CSV reader splits the empty
field), so every such post would join every other in its co-link network. Each set is therefore
written twice: `<set>.csv` with every post (co-retweet, co-tweet, co-similar-tweet, co-reply) and
`<set>-links.csv` with the posts that share a URL (co-link).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import load_config
from mpsynth.core import schema
from mpsynth.core.schema import REPOST, values_of
from mpsynth.metrics.extraction import extract
from mpsynth.metrics.networks import answered_posts, reshared_key
from mpsynth.metrics.structure import Posts
from mpsynth.rundir.context import StageContext
from mpsynth.rundir.directory import RunDirectory

# the toolkit's networks -> (mpsynth's graph of the same pairs, the export file the toolkit reads)
TOOLKIT_NETWORKS = {
    "co_link": ("co_url", "-links"),
    "co_retweet": ("co_retweet", ""),
    "co_tweet": ("co_tweet", ""),
    "co_similar_tweet": ("co_similar_tweet", ""),
    "co_reply": ("co_reply", ""),
}
COLUMNS = ("message_id", "user_id", "username", "repost_id", "reply_id", "message", "timestamp",
           "urls")  # fmt: skip


def toolkit_rows(posts: pa.Table) -> tuple[list[list], int]:
    """The toolkit's rows for the posts that have an account and a time; how many had not."""
    read = Posts.of(posts)
    texts = values_of(posts, "text")
    kinds = read.kind if read.kind is not None else [None] * posts.num_rows
    replies = answered_posts(read) or [None] * posts.num_rows  # a comment: its thread's start
    found = extract(texts, read.platform.tolist(), values=True).values
    assert found is not None
    rows, skipped = [], 0
    for i, (post_id, platform, author) in enumerate(zip(read.ids, read.platform, read.author,
                                                       strict=True)):  # fmt: skip
        if author is None or np.isnan(read.seconds[i]):
            skipped += 1
            continue
        rows.append(
            [
                post_id,
                f"{platform}:{author}",
                author,
                _repost_id(read, i) if kinds[i] == REPOST else "",
                replies[i] or "",
                texts[i],
                int(read.seconds[i]),
                " ".join(dict.fromkeys(found["urls"][i])),
            ]
        )
    return rows, skipped


def _repost_id(posts: Posts, row: int) -> str:
    """A repost's repost_id: the post it names, else one id per text, from the key mpsynth's
    co_retweet graph joins reposts by (metrics.networks.reshared_key)."""
    key = reshared_key(posts, row)
    if key.startswith("id:"):
        return key.removeprefix("id:")
    return "text-" + hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def write_toolkit_csv(posts: pa.Table, path: Path) -> tuple[int, int]:
    """Write the posts as the toolkit's CSV, and those with a URL beside it (`<name>-links.csv`,
    for its co-link network); (rows written, posts left out)."""
    rows, skipped = toolkit_rows(posts)
    for target, chosen in (
        (path, rows),
        (path.with_name(f"{path.stem}-links.csv"), [r for r in rows if r[-1]]),
    ):
        with target.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(chosen)
    return len(rows), skipped


def export_coordination(run_dir: Path, out: Path) -> dict[str, tuple[int, int]]:
    """Each synthetic set and the real posts as `<out>/<set>.csv` (and `<set>-links.csv`);
    set -> (rows, left out)."""
    from mpsynth.stages.evaluate.runner import synthetic_sets

    config = load_config(Path(run_dir) / "config.yaml")
    ctx = StageContext(config, RunDirectory(Path(run_dir)))
    out.mkdir(parents=True, exist_ok=True)
    sources = {schema.REAL: ctx.path("ingest", "posts.parquet")}
    sources.update((path.stem, path) for path in synthetic_sets(ctx))
    return {
        name: write_toolkit_csv(pq.read_table(path), out / f"{name}.csv")
        for name, path in sources.items()
    }
