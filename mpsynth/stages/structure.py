"""The structure stage: every synthetic set gets accounts, actors and times drawn from the real
posts' structure, so that a coordination study has something to build networks from.

- **Personas.** Per platform, the real accounts are clustered (k-means on their topic mix and the
  mean embedding of their posts) into personas of at least `structure.persona_min_accounts`
  accounts each: a synthetic account follows a persona, never one real person.
- **Accounts.** A synthetic post's persona is the one its prompt's examples on that platform came
  from (their authors' personas, drawn by vote), else one that writes on its topic. Each persona's
  posts are then dealt to pseudonymous accounts whose post counts are drawn from the persona's real
  accounts, so the posts-per-account distribution (heavy tail included) follows the real one; the
  posts are dealt in topic order, so an account's posts hang together.
- **Actors.** Where one request wrote posts for several platforms, their accounts can be one
  cross-platform actor, up to the real share of authors seen on several platforms (or
  `structure.cross_platform_actors`).
- **Time.** Each post's timestamp is a real timestamp of its persona on its platform and topic (the
  persona's own times, else the topic's, else the platform's), moved by up to
  `structure.time_jitter_minutes`: bursts around events and the persona's hours and days survive.

- **Replies.** Where the real posts answer one another, the same share of synthetic posts become
  replies, written with their parent post in the prompt, as deep as the real threads go
  (`mpsynth.stages.replies`).
- **Interactions.** Where the real posts carry kinds and engagement counts, the synthetic posts get
  kinds, reposts at the real share (a synthetic account resharing a synthetic post: no model is
  asked), engagement counts and followers (`mpsynth.stages.interactions`).

Platforms whose input has no authors (or fewer accounts than a persona needs) get no accounts,
those without timestamps no times and those without reply ids no replies: nothing is invented that
the real data does not show.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.config import StructureConfig
from mpsynth.core.schema import ENGAGEMENT, FOLLOWERS
from mpsynth.metrics.structure import epoch_seconds, timestamps_of
from mpsynth.rundir.context import StageContext, write_table
from mpsynth.stages.drops import apply_drops, read_drops
from mpsynth.stages.interactions import (
    RealInteractions,
    add_reposts,
    draw_engagement,
    real_interactions,
    with_kinds,
    without_reposts,
)
from mpsynth.stages.postprocess.runner import CALIBRATED
from mpsynth.stages.replies import ReplyWriter, real_quotes, real_replies

log = logging.getLogger(__name__)

NO_PERSONA = -1
MIN_TIMES = 5  # timestamps a group needs before posts draw from it rather than a wider one
STRUCTURE_COLUMNS = ("author", "actor", "persona", "timestamp", "reply_to", "thread_id", "post_kind",
                     "quote_of", *ENGAGEMENT)  # fmt: skip


@dataclass
class PlatformAccounts:
    """The real accounts of one platform, with their personas."""

    names: np.ndarray  # account names (object array)
    posts: np.ndarray  # posts per account
    persona: np.ndarray  # persona of each account (NO_PERSONA: none)
    index: dict[str, int] = field(default_factory=dict)  # name -> position
    followers: np.ndarray | None = None  # each account's median followers (NaN: not given)

    @property
    def personas(self) -> int:
        return int(self.persona.max()) + 1 if len(self.persona) else 0


@dataclass
class RealStructure:
    """What the real corpus shows of accounts and time, in the form the assignment needs."""

    accounts: dict[str, PlatformAccounts]  # platform -> accounts (only platforms with personas)
    post_persona: dict[str, tuple[str, int]]  # real post id -> (platform, persona)
    times: dict[tuple, np.ndarray]  # (platform, persona, topic) and wider keys -> epoch seconds
    topic_weights: dict[tuple[str, int], np.ndarray]  # (platform, topic) -> posts per persona
    persona_posts: dict[str, np.ndarray]  # platform -> posts per persona
    cross_platform_share: float  # real authors on more than one platform, over all authors
    timestamped: set[str]  # platforms whose posts have timestamps


def personas(profiles: np.ndarray, min_size: int, most: int, seed: int) -> np.ndarray:
    """Cluster rows into groups of at least `min_size` (k-means, then each group under the size
    merged whole into the nearest other group); all NO_PERSONA when there are fewer rows."""
    n = len(profiles)
    if n < min_size:
        return np.full(n, NO_PERSONA, dtype=np.int64)
    clusters = min(most, max(1, n // (2 * min_size)))
    if clusters == 1:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    model = (
        KMeans(clusters, n_init=1, random_state=seed)
        if n <= 20_000
        else MiniBatchKMeans(clusters, n_init=1, random_state=seed, batch_size=4096)
    )
    with warnings.catch_warnings():  # identical profiles: fewer distinct groups, merged below
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = model.fit_predict(profiles).astype(np.int64)
    while True:
        sizes = np.bincount(labels, minlength=clusters)
        present = np.flatnonzero(sizes)
        small = present[sizes[present] < min_size]
        if not len(small) or len(present) == 1:
            break
        group = small[np.argmin(sizes[small])]
        others = present[present != group]
        centroids = np.stack([profiles[labels == o].mean(axis=0) for o in others])
        own = profiles[labels == group].mean(axis=0)
        labels[labels == group] = others[np.argmin(((centroids - own) ** 2).sum(axis=1))]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def _profiles(account: np.ndarray, n_accounts: int, topics: np.ndarray, vectors) -> np.ndarray:
    """Each account's topic mix (shares) beside the mean of its posts' unit embeddings."""
    values, topic_index = np.unique(topics, return_inverse=True)
    mix = np.zeros((n_accounts, len(values)))
    np.add.at(mix, (account, topic_index), 1.0)
    mix /= mix.sum(axis=1, keepdims=True)
    if vectors is None:
        return mix
    from scipy.sparse import csr_matrix

    # the sum of each account's vectors: one sparse product, not a Python-level scatter
    members = csr_matrix(
        (np.ones(len(account), dtype=np.float32), (account, np.arange(len(account)))),
        shape=(n_accounts, len(account)),
    )
    style = np.asarray(members @ vectors, dtype=np.float64)
    style /= np.maximum(np.linalg.norm(style, axis=1, keepdims=True), 1e-12)
    return np.hstack([mix, style])


def _median_by(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each group's median of its known values (NaN where it has none)."""
    out = np.full(int(group.max()) + 1 if len(group) else 0, np.nan)
    known = ~np.isnan(values)
    order = np.argsort(group[known], kind="stable")
    grouped, sorted_values = group[known][order], values[known][order]
    if not len(grouped):
        return out
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    for start, stop in zip(starts, [*starts[1:], len(grouped)], strict=True):
        out[grouped[start]] = np.median(sorted_values[start:stop])
    return out


def real_structure(
    posts: pa.Table, topics: np.ndarray, vectors: np.ndarray | None, config: StructureConfig, seed
) -> RealStructure:
    """Personas per platform and the timestamps each persona, topic and platform shows.

    `posts` has id, platform, author and timestamp; `topics` and `vectors` (or None) are row-aligned.
    """
    platform = posts.column("platform").to_numpy(zero_copy_only=False)
    author = np.array(posts.column("author").to_pylist(), dtype=object)
    seconds = epoch_seconds(posts.column("timestamp"))
    followers = (
        np.array(posts.column(FOLLOWERS).to_pylist(), dtype=float)  # None -> NaN
        if FOLLOWERS in posts.column_names
        else None
    )
    ids = posts.column("id").to_pylist()
    has_author = np.array([a is not None for a in author])
    accounts: dict[str, PlatformAccounts] = {}
    post_persona: dict[str, tuple[str, int]] = {}
    row_persona = np.full(len(platform), NO_PERSONA, dtype=np.int64)
    for name in sorted(set(platform.tolist())):
        rows = np.flatnonzero((platform == name) & has_author)
        if not len(rows):
            continue
        names, account = np.unique(author[rows].astype(str), return_inverse=True)
        profile = _profiles(
            account, len(names), topics[rows], None if vectors is None else vectors[rows]
        )
        persona = personas(
            profile, config.persona_min_accounts, config.max_personas_per_platform, seed
        )
        if persona.max(initial=NO_PERSONA) == NO_PERSONA:
            log.info(
                "structure: %s has %d accounts, fewer than a persona needs (%d): no accounts",
                name,
                len(names),
                config.persona_min_accounts,
            )
            continue
        accounts[name] = PlatformAccounts(
            names=names,
            posts=np.bincount(account, minlength=len(names)),
            persona=persona,
            index={n: i for i, n in enumerate(names.tolist())},
            followers=None if followers is None else _median_by(account, followers[rows]),
        )
        row_persona[rows] = persona[account]
        for row in rows.tolist():
            post_persona[ids[row]] = (name, int(row_persona[row]))
    times: dict[tuple, list] = defaultdict(list)
    timed = np.flatnonzero(~np.isnan(seconds))
    for row in timed.tolist():
        name, topic, persona = platform[row], int(topics[row]), int(row_persona[row])
        for key in ((name, persona, topic), (name, persona), (name, None, topic), (name,)):
            times[key].append(seconds[row])
    topic_weights: dict[tuple[str, int], np.ndarray] = {}
    persona_posts: dict[str, np.ndarray] = {}
    for name, known in accounts.items():
        rows = np.flatnonzero((platform == name) & (row_persona >= 0))
        persona_posts[name] = np.bincount(row_persona[rows], minlength=known.personas)
        for topic in np.unique(topics[rows]).tolist():
            chosen = rows[topics[rows] == topic]
            topic_weights[(name, topic)] = np.bincount(
                row_persona[chosen], minlength=known.personas
            )
    platforms_of: dict[str, set[str]] = defaultdict(set)
    for name, who in zip(platform[has_author].tolist(), author[has_author].tolist(), strict=True):
        platforms_of[who].add(name)
    cross = sum(len(p) > 1 for p in platforms_of.values()) / max(len(platforms_of), 1)
    return RealStructure(
        accounts=accounts,
        post_persona=post_persona,
        times={key: np.array(value) for key, value in times.items()},
        topic_weights=topic_weights,
        persona_posts=persona_posts,
        cross_platform_share=cross,
        timestamped=set(platform[timed].tolist()),
    )


def assign_structure(
    synthetic: pa.Table, real: RealStructure, config: StructureConfig, seed, label: str
) -> tuple[pa.Table, dict[str, Any]]:
    """`synthetic` with author, actor, persona and timestamp columns, and a summary of them."""
    rng = np.random.default_rng(seed)
    platform = synthetic.column("platform").to_pylist()
    topic = synthetic.column("topic").to_pylist()
    persona = _draw_personas(
        platform, topic, synthetic.column("example_ids").to_pylist(), real, rng
    )
    author, followers = _deal_accounts(platform, topic, persona, real, rng)
    share = (
        real.cross_platform_share
        if config.cross_platform_actors is None
        else config.cross_platform_actors
    )
    actor = _actors(synthetic.column("request_id").to_pylist(), author, platform, share, rng)
    stamps = _draw_times(platform, topic, persona, real, config.time_jitter_minutes * 60, rng)
    out = synthetic
    for name, values in (
        ("author", pa.array(author, pa.string())),
        ("actor", pa.array(actor, pa.string())),
        ("persona", pa.array([int(p) if p >= 0 else None for p in persona], pa.int64())),
        ("timestamp", timestamps_of(stamps)),
        *(
            [(FOLLOWERS, pa.array([followers.get(a) for a in author], pa.int64()))]
            if any(known.followers is not None for known in real.accounts.values())
            else []
        ),
    ):
        if name in out.column_names:
            out = out.drop_columns([name])
        out = out.append_column(name, values)
    summary = _summary(platform, author, actor, stamps)
    summary["cross_platform_target"] = share
    reached = summary["cross_platform_actors"] / max(summary["actors"], 1)
    if reached < share:
        log.warning(
            "structure %s: %.0f%% of actors span platforms, short of the %.0f%% asked for: an "
            "actor holds one account per platform, and the platforms' account counts differ",
            label,
            100 * reached,
            100 * share,
        )
    return out, summary


def _draw_personas(
    platform: list[str], topic: list, examples: list[list[str]], real: RealStructure, rng
) -> np.ndarray:
    """Each post's persona: by vote among its prompt's examples on the same platform (their
    authors' personas), else by how much each persona writes on the post's topic."""
    persona = np.full(len(platform), NO_PERSONA, dtype=np.int64)
    for row, (name, shown) in enumerate(zip(platform, examples, strict=True)):
        known = real.accounts.get(name)
        if known is None:
            continue
        votes = Counter(
            real.post_persona[e][1]
            for e in shown
            if e in real.post_persona and real.post_persona[e][0] == name
        )
        if votes:
            choices, weights = zip(*sorted(votes.items()), strict=True)
            weights = np.array(weights, dtype=float)
        else:
            weights = real.topic_weights.get((name, topic[row]))
            if weights is None or not weights.sum():
                weights = real.persona_posts[name]
            choices, weights = np.arange(known.personas), weights.astype(float)
        persona[row] = choices[rng.choice(len(choices), p=weights / weights.sum())]
    return persona


def _deal_accounts(
    platform: list[str], topic: list, persona: np.ndarray, real: RealStructure, rng
) -> tuple[list[str | None], dict[str, int]]:
    """Each persona's posts, in topic order (ties at random), dealt to pseudonymous accounts that
    each take as many posts as one of the persona's real accounts wrote, and that account's
    followers where the input gives them; (each post's account, each account's followers)."""
    author: list[str | None] = [None] * len(platform)
    followers: dict[str, int] = {}
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for row in np.flatnonzero(persona >= 0).tolist():
        groups[(platform[row], int(persona[row]))].append(row)
    numbers: Counter = Counter()
    for (name, number), rows in sorted(groups.items()):
        known = real.accounts[name]
        tiebreak = rng.random(len(rows))
        order = [rows[i] for i in np.lexsort((tiebreak, [_topic_key(topic[r]) for r in rows]))]
        members = np.flatnonzero(known.persona == number)
        start = 0
        while start < len(order):
            model = members[rng.integers(len(members))]  # the real account it takes after
            take = int(known.posts[model])
            numbers[name] += 1
            account = f"synthetic_{name}_{numbers[name]:05d}"
            if known.followers is not None and not np.isnan(known.followers[model]):
                followers[account] = int(known.followers[model])
            for row in order[start : start + take]:
                author[row] = account
            start += take
    return author, followers


def _draw_times(
    platform: list[str], topic: list, persona: np.ndarray, real: RealStructure, jitter: float, rng
) -> np.ndarray:
    """Each post's time (epoch seconds, NaN on platforms without times): a real time of its
    persona on its platform and topic, else of the persona, the topic or the platform, moved by up
    to `jitter` seconds either way."""
    stamps = np.full(len(platform), np.nan)
    for row, (name, number, subject) in enumerate(
        zip(platform, persona.tolist(), topic, strict=True)
    ):
        if name not in real.timestamped:
            continue
        for key in ((name, number, subject), (name, number), (name, None, subject), (name,)):
            pool = real.times.get(key)
            if pool is not None and (len(pool) >= MIN_TIMES or key == (name,)):
                stamps[row] = pool[rng.integers(len(pool))] + rng.uniform(-jitter, jitter)
                break
    return stamps


def _topic_key(topic: int | None) -> int:
    return -2 if topic is None else topic


def _actors(
    requests: list[str], author: list, platform: list, share: float, rng: np.random.Generator
) -> list[str | None]:
    """Join the accounts that answered one multi-platform request into one actor, request by
    request in random order, until the share of actors on several platforms reaches `share`."""
    parent = {a: a for a in author if a is not None}
    platforms = {a: {p} for a, p in zip(author, platform, strict=True) if a is not None}

    def root(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    actors, cross = len(parent), 0
    by_request: dict[str, dict[str, str]] = defaultdict(dict)
    for request, a, p in zip(requests, author, platform, strict=True):
        if a is not None:
            by_request[request].setdefault(p, a)
    joint = [accounts for accounts in by_request.values() if len(accounts) > 1]
    for position in rng.permutation(len(joint)).tolist():
        if actors == 0 or cross / actors >= share:
            break
        roots = [root(a) for a in joint[position].values()]
        for other in roots[1:]:
            first = root(roots[0])
            if first == other or platforms[first] & platforms[other]:
                continue  # an actor has one account per platform
            cross -= (len(platforms[first]) > 1) + (len(platforms[other]) > 1)
            parent[other] = first
            platforms[first] |= platforms.pop(other)
            cross += 1
            actors -= 1
    return [None if a is None else root(a) for a in author]


def _summary(platform, author, actor, stamps) -> dict[str, Any]:
    by_platform: dict[str, Any] = {}
    for p in sorted(set(platform)):
        rows = [i for i, q in enumerate(platform) if q == p]
        accounts = Counter(author[i] for i in rows if author[i] is not None)
        by_platform[p] = {
            "posts": len(rows),
            "accounts": len(accounts),
            "with_author": sum(accounts.values()),
            "with_timestamp": int(np.sum(~np.isnan(stamps[rows]))),
            "most_posts_per_account": max(accounts.values(), default=0),
        }
    members: dict[str, set] = defaultdict(set)
    for a, p in zip(actor, platform, strict=True):
        if a is not None:
            members[a].add(p)
    return {
        "platforms": by_platform,
        "actors": len(members),
        "cross_platform_actors": sum(len(p) > 1 for p in members.values()),
    }


def run_structure(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.stages.embed import read_vectors

    config = ctx.config.structure
    present = pq.read_schema(ctx.reference()).names
    wanted = ["id", "platform", "author", "timestamp", "reply_to", "text", "post_kind", "quote_of"]
    posts = pq.read_table(
        ctx.reference(), columns=[c for c in [*wanted, *ENGAGEMENT] if c in present]
    )
    topic_of = pq.read_table(ctx.path("topics", "assignments"), columns=["id", "topic"])
    lookup = dict(
        zip(topic_of.column("id").to_pylist(), topic_of.column("topic").to_pylist(), strict=True)
    )
    topics = np.array([lookup.get(i, -1) for i in posts.column("id").to_pylist()], dtype=np.int64)
    vectors = read_vectors(ctx, posts.column("id").to_pylist()) if config.accounts else None
    real = real_structure(posts, topics, vectors, config, ctx.config.seed)
    if not config.accounts:
        real.accounts.clear()
    if not config.times:
        real.timestamped.clear()
    replies = real_replies(posts, topics, config.max_reply_depth) if config.replies else {}
    quotes = real_quotes(posts, topics) if config.interactions and config.quotes else {}
    interactions = RealInteractions()
    if config.interactions:
        persona_of = [
            real.post_persona.get(i, (None, NO_PERSONA))[1] for i in posts["id"].to_pylist()
        ]
        interactions = real_interactions(posts, topics, np.array(persona_of, dtype=np.int64))
    if config.interactions and config.reposts:  # reposts come after: shares of the posts without
        replies, quotes = (without_reposts(found, interactions) for found in (replies, quotes))
    writer = ReplyWriter(ctx, replies, out, quotes)
    (out / "synthetic").mkdir()
    summary: dict[str, Any] = {
        "real_cross_platform_share": real.cross_platform_share,
        "personas": {p: a.personas for p, a in real.accounts.items()},
        "sets": {},
    }
    rows = {}
    paths = ctx.path("postprocess", "synthetic").glob("*.parquet")
    drops = read_drops(ctx.run.root)  # the posts a reviewer took out (mpsynth drop)
    # each plain set before its calibrated copy, which takes the plain set's replies
    for path in sorted(paths, key=lambda p: (p.stem.removesuffix(CALIBRATED), p.stem)):
        # a calibrated set holds the plain set's posts: the same draw gives them the same accounts
        base = path.stem.removesuffix(CALIBRATED)
        seed = [
            ctx.config.draw_seed,
            int.from_bytes(hashlib.blake2b(base.encode(), digest_size=4).digest()),
        ]
        table, summary["sets"][path.stem] = assign_structure(
            pq.read_table(path), real, config, seed, path.stem
        )
        if replies:
            table, summary["sets"][path.stem]["replies"] = writer.add(table, path.stem, seed)
        if quotes:
            table, summary["sets"][path.stem]["quotes"] = writer.add(
                table, path.stem, seed, kind="quote"
            )
        table, summary["sets"][path.stem]["interactions"] = _interactions(
            table, interactions, config, seed
        )
        table, dropped = apply_drops(drops, table, path.stem, out)
        if dropped:
            summary.setdefault("review", {})[path.stem] = dropped
        for platform, counts in _carried(table).items():  # what the written set carries
            summary["sets"][path.stem]["platforms"].setdefault(platform, {}).update(counts)
        rows[path.stem] = write_table(table, out / "synthetic" / path.name)
        log.info("structure %s: %s", path.stem, _line(summary["sets"][path.stem]))
    _write_personas(real, out / "personas.parquet")
    if replies or quotes:
        rows.update(writer.close())
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return rows


def _write_personas(real: RealStructure, path: Path) -> None:
    """Each real account with its platform, persona and posts."""
    rows = [
        {"platform": p, "persona": int(n), "account": str(name), "posts": int(count)}
        for p, known in real.accounts.items()
        for name, n, count in zip(known.names, known.persona, known.posts, strict=True)
    ]
    columns = [("platform", pa.string()), ("persona", pa.int64()), ("account", pa.string()),
               ("posts", pa.int64())]  # fmt: skip
    write_table(pa.Table.from_pylist(rows, schema=pa.schema(columns)), path)


def _carried(table: pa.Table) -> dict[str, dict[str, int]]:
    """Per platform: posts, posts with each link and engagement count, posts of each kind."""
    platform = np.array(table.column("platform").to_pylist(), dtype=object)
    out: dict[str, dict[str, int]] = {}
    for name in sorted(set(platform.tolist())):
        mask = pa.array(platform == name)
        mine = table.filter(mask)
        counts = {"posts": mine.num_rows}
        for column in ("timestamp", "reply_to", "thread_id", "quote_of", *ENGAGEMENT):
            if column in mine.column_names:
                counts[f"with_{column}"] = mine.num_rows - mine.column(column).null_count
        if "post_kind" in mine.column_names:
            kinds = Counter(mine.column("post_kind").to_pylist())
            counts.update({f"kind_{k}": n for k, n in sorted(kinds.items()) if k is not None})
        out[name] = counts
    return out


def _interactions(
    table: pa.Table, real: RealInteractions, config: StructureConfig, seed: list[int]
) -> tuple[pa.Table, dict[str, Any]]:
    """The set with kinds, reposts and engagement counts where the real posts carry them."""
    if not real.kinds and not real.engagement:
        return table, {}
    rng = np.random.default_rng([*seed, 11])
    out = with_kinds(table, real) if real.kinds else table
    reposts: dict[str, Any] = {}
    if real.kinds and config.reposts:
        out, reposts = add_reposts(out, real, config.time_jitter_minutes * 60, rng)
    out, drawn = draw_engagement(out, real, rng)
    kinds = Counter(out.column("post_kind").to_pylist()) if "post_kind" in out.column_names else {}
    return out, {
        "kinds": {k: n for k, n in sorted(kinds.items(), key=str) if k is not None},
        "reposts": reposts,
        "engagement": drawn,
    }


def _line(summary: dict[str, Any]) -> str:
    parts = [
        f"{p} {s['accounts']:,} accounts"
        + (f", {s['with_timestamp']:,} timed" if s["with_timestamp"] else "")
        for p, s in summary["platforms"].items()
        if s["accounts"] or s["with_timestamp"]
    ]
    cross = summary["cross_platform_actors"]
    reposts = summary.get("interactions", {}).get("reposts", {})
    return (
        "; ".join(parts or ["no accounts or times"])
        + (f"; {cross} cross-platform actors" if cross else "")
        + "".join(
            f"; {p} {r['reposts']:,} reposts (real share {r['real_share']:.0%})"
            for p, r in reposts.items()
        )
    )
