"""Synthetic interactions and engagement: where the real posts carry kinds (ingest's `post_kind`)
and engagement counts, each synthetic set gets them too, with the real shares.

- **Kinds.** Every synthetic post on such a platform is given a kind: a reply written by the reply
  rounds takes the platform's word for it (`comment` where the real answers are comments, as on
  Reddit, else `reply`), a quote written by the quote rounds (`mpsynth.stages.replies`: the quoted
  post in the prompt, one request each, through the ledger) is a `quote`, every other post an
  `original`.
- **Reposts** (`add_reposts`): per platform, reposts are added until they are the real share of the
  set's posts. A repost is a synthetic account resharing a synthetic post (its text the original's,
  in the platform's retweet form where the real reposts use one, `quote_of` naming it); no model
  is asked. The resharing account is one that writes on the original's topic (never its author),
  its persona drawn from the personas of the real reposts. Its time: the original's plus a real
  delay where the input links reposts to their originals; else a real repost time of the persona
  after the original's, moved by up to `structure.time_jitter_minutes` as every drawn time is (the
  IRA tweets, for one, name no retweeted tweet).
- **Engagement** (`draw_engagement`): each count the real posts of the platform carry (likes,
  shares, comments, views, votes) is drawn for each synthetic post from the real posts of its kind
  (repost or not), persona and topic (else wider), so heavy tails survive. Followers are
  an account's, not a post's: the structure stage gives each synthetic account those of the real
  account its post count was drawn from.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mpsynth.core.schema import ANSWER_KINDS, ENGAGEMENT, FOLLOWERS, REPOST, values_of
from mpsynth.metrics.structure import epoch_seconds, timestamps_of
from mpsynth.stages.replies import with_columns

POST_COUNTS = tuple(c for c in ENGAGEMENT if c != FOLLOWERS)
MIN_VALUES = 5  # real values a persona (and topic) needs before posts draw from it, not wider
RETWEET_FORM = "RT @{author}: {text}"


@dataclass
class RealInteractions:
    """What the real posts show of kinds, reposts and engagement, per platform (empty: nothing,
    as when `structure.interactions` is off)."""

    # platform -> kind -> posts (platforms whose posts carry kinds)
    kinds: dict[str, Counter] = field(default_factory=dict)
    # platform -> what its answers are called (reply or comment)
    answer_kind: dict[str, str] = field(default_factory=dict)
    # platform -> real reposts per persona
    repost_personas: dict[str, np.ndarray] = field(default_factory=dict)
    # (platform, persona), (platform,) -> sorted repost times
    repost_times: dict[tuple, np.ndarray] = field(default_factory=dict)
    # platform -> seconds from an original to its repost
    repost_delays: dict[str, np.ndarray] = field(default_factory=dict)
    # platform -> real reposts mostly read "RT @author: ..."
    retweet_form: dict[str, bool] = field(default_factory=dict)
    # _engagement_keys -> count -> real values
    engagement: dict[tuple, dict[str, np.ndarray]] = field(default_factory=dict)

    def repost_share(self, platform: str) -> float:
        kinds = self.kinds.get(platform)
        return kinds[REPOST] / sum(kinds.values()) if kinds else 0.0


def real_interactions(posts: pa.Table, topics: np.ndarray, persona: np.ndarray) -> RealInteractions:
    """`posts` has id, platform, timestamp, text and whichever of post_kind, quote_of and the
    engagement counts the input carries; `topics` and `persona` (the author's, -1 for none) are
    row-aligned."""
    platform = np.array(values_of(posts, "platform"), dtype=object)
    kind = np.array(values_of(posts, "post_kind"), dtype=object)
    seconds = epoch_seconds(posts.column("timestamp"))
    texts, ids, quoted = (values_of(posts, c) for c in ("text", "id", "quote_of"))
    row_of = {post_id: row for row, post_id in enumerate(ids)}
    kinds: dict[str, Counter] = {}
    answer_kind, repost_personas, delays, form = {}, {}, {}, {}
    repost_times: dict[tuple, list] = defaultdict(list)
    for name in sorted(set(platform.tolist())):
        rows = np.flatnonzero((platform == name) & (kind != None))  # noqa: E711
        if not len(rows):
            continue
        kinds[name] = Counter(kind[rows].tolist())
        answer_kind[name] = max(ANSWER_KINDS, key=lambda k: (kinds[name][k], k == "reply"))
        reposts = rows[kind[rows] == REPOST]
        known = persona[reposts]
        repost_personas[name] = np.bincount(known[known >= 0], minlength=int(persona.max()) + 1)
        gaps = []
        for row in reposts.tolist():
            if not np.isnan(seconds[row]):
                repost_times[(name,)].append(seconds[row])
                repost_times[(name, int(persona[row]))].append(seconds[row])
            original = row_of.get(quoted[row]) if quoted[row] else None
            if original is not None and seconds[original] <= seconds[row]:  # NaN compares False
                gaps.append(seconds[row] - seconds[original])
        delays[name] = np.array(gaps)
        form[name] = (
            bool(len(reposts))
            and float(np.mean([(texts[r] or "").startswith("RT @") for r in reposts.tolist()]))
            > 0.5
        )
    engagement: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for count in POST_COUNTS:
        values = values_of(posts, count)
        for row in [r for r, v in enumerate(values) if v is not None]:
            name, who, shared = platform[row], int(persona[row]), kind[row] == REPOST
            for key in _engagement_keys(name, shared, who, int(topics[row])):
                engagement[key][count].append(values[row])
    return RealInteractions(
        kinds=kinds,
        answer_kind=answer_kind,
        repost_personas=repost_personas,
        repost_times={k: np.sort(v) for k, v in repost_times.items()},
        repost_delays=delays,
        retweet_form=form,
        engagement={k: {c: np.array(v) for c, v in d.items()} for k, d in engagement.items()},
    )


def without_reposts(found: dict, real: RealInteractions) -> dict:
    """Reply or quote shares (platform -> RealReplies) as shares of the posts that are no repost:
    the rounds write them into a set before its reposts are added, so that once they are, each
    share is the real one of all the posts."""
    out = {}
    for platform, shares in found.items():
        reposts = real.repost_share(platform)
        out[platform] = (
            dataclasses.replace(shares, share=min(1.0, shares.share / (1 - reposts)))
            if 0 < reposts < 1
            else shares
        )
    return out


def with_kinds(table: pa.Table, real: RealInteractions) -> pa.Table:
    """The set's posts with their kind: on platforms whose real posts carry kinds, a written reply
    is the platform's answer kind, a written quote a quote and any other post an original."""
    kinds = [
        None
        if p not in real.kinds
        else real.answer_kind[p]
        if parent is not None
        else "quote"
        if quoted is not None
        else "original"
        for p, parent, quoted in zip(
            values_of(table, "platform"),
            values_of(table, "reply_to"),
            values_of(table, "quote_of"),
            strict=True,
        )
    ]
    return _set(table, "post_kind", pa.array(kinds, pa.string()))


def add_reposts(
    table: pa.Table, real: RealInteractions, jitter: float, rng: np.random.Generator
) -> tuple[pa.Table, dict[str, dict[str, int | float]]]:
    """The set with reposts appended, per platform up to the real repost share of its posts; and
    per platform how many were added against the real share."""
    if "author" not in table.column_names:
        return table, {}
    platform, author, topic, persona = (
        values_of(table, c) for c in ("platform", "author", "topic", "persona")
    )
    seconds = epoch_seconds(table.column("timestamp"))
    picked: list[int] = []  # the original of each repost
    made: dict[str, list] = defaultdict(list)
    summary: dict[str, dict[str, int | float]] = {}
    for name in sorted(real.kinds):
        share = real.repost_share(name)
        rows = [r for r, p in enumerate(platform) if p == name and author[r] is not None]
        if share <= 0 or share >= 1 or len(rows) < 2:
            continue
        wanted = round(share / (1 - share) * len(rows))
        resharers = Resharers(
            rows, author, persona, topic, real.repost_personas.get(name, np.zeros(0))
        )
        added = 0
        for _ in range(wanted):
            original = rows[int(rng.integers(len(rows)))]
            chosen = resharers.draw(topic[original], author[original], rng)
            if chosen is None:
                continue
            account, number = chosen
            when = _repost_time(real, name, number, seconds[original], jitter, rng)
            picked.append(original)
            made["author"].append(account)
            made["persona"].append(number)
            made["seconds"].append(when)
            added += 1
        summary[name] = {"real_share": round(share, 4), "reposts": added}
    if not picked:
        return table, summary
    base = with_columns(
        table,
        {c: pa.nulls(table.num_rows, pa.string()) for c in ("post_kind", "quote_of")
         if c not in table.column_names},
    )  # fmt: skip
    return pa.concat_tables([base, _reposts(base, picked, made, real)]), summary


def _reposts(table: pa.Table, picked: list[int], made: dict[str, list], real) -> pa.Table:
    """The repost rows: each a copy of its original (`picked`: their rows) with its own id, the
    resharing account (`made`: author, persona, seconds) and `quote_of` naming the original."""
    author, ids, texts, platform = (
        values_of(table, c) for c in ("author", "id", "text", "platform")
    )
    actor_of = dict(zip(author, values_of(table, "actor"), strict=True))
    followers_of = dict(zip(author, values_of(table, FOLLOWERS), strict=True))
    counter: Counter = Counter()
    repost_ids = []
    for original in picked:
        counter[ids[original]] += 1
        repost_ids.append(f"{ids[original]}-rp{counter[ids[original]]}")
    resharers = made["author"]
    columns = {
        "id": pa.array(repost_ids, pa.string()),
        "text": pa.array(
            [
                RETWEET_FORM.format(author=author[o], text=texts[o])
                if real.retweet_form.get(platform[o])
                else texts[o]
                for o in picked
            ],
            pa.string(),
        ),
        "author": pa.array(resharers, pa.string()),
        "actor": pa.array([actor_of.get(a) for a in resharers], pa.string()),
        "persona": pa.array(made["persona"], pa.int64()),
        "timestamp": timestamps_of(np.array(made["seconds"], dtype=float)),
        "post_kind": pa.array([REPOST] * len(picked), pa.string()),
        "quote_of": pa.array([ids[o] for o in picked], pa.string()),
        "reply_to": pa.nulls(len(picked), pa.string()),
        "thread_id": pa.nulls(len(picked), pa.string()),
        FOLLOWERS: pa.array([followers_of.get(a) for a in resharers], pa.int64()),
    }
    rows = table.take(pa.array(picked, pa.int64()))
    present = {name: values for name, values in columns.items() if name in rows.column_names}
    return with_columns(rows, present).cast(table.schema)


class Resharers:
    """Who reshares on one platform: the personas of the real reposts (those with synthetic
    accounts), and per persona (and persona and topic) its synthetic accounts weighted by their
    posts; built once, each draw a binary search."""

    def __init__(
        self, rows: list[int], author: list, persona: list, topic: list, weights: np.ndarray
    ) -> None:
        found: dict[tuple, Counter] = defaultdict(Counter)
        for row in rows:
            found[(persona[row],)][author[row]] += 1
            found[(persona[row], topic[row])][author[row]] += 1
        self.accounts: dict[tuple, tuple[list[str], np.ndarray]] = {}
        for key, counts in found.items():
            names = sorted(counts)
            self.accounts[key] = (names, np.cumsum([counts[a] for a in names], dtype=float))
        present = [p for p in range(len(weights)) if weights[p] and (p,) in found]
        chance = [float(weights[p]) for p in present]
        if not present:  # no real repost has a persona: any persona with accounts
            present = sorted(k[0] for k in found if len(k) == 1 and k[0] is not None)
            chance = [1.0] * len(present)
        self.personas, self.chance = present, np.cumsum(chance)

    def draw(self, topic, original_author: str, rng) -> tuple[str, int] | None:
        """(account, persona) of a repost of a post on `topic`: the persona drawn by the real
        reposts' personas, the account among its accounts writing on the topic (else any of its
        accounts), by their posts; never the original's author."""
        if not self.personas:
            return None
        pick = int(np.searchsorted(self.chance, rng.random() * self.chance[-1], side="right"))
        number = self.personas[min(pick, len(self.personas) - 1)]
        for key in ((number, topic), (number,)):
            found = self.accounts.get(key)
            if found is None or found[0] == [original_author]:
                continue
            names, cumulative = found
            for _ in range(20):  # the original's author is drawn again: draw again
                at = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
                name = names[min(at, len(names) - 1)]
                if name != original_author:
                    return name, number
            return next(a for a in names if a != original_author), number
        return None


def _repost_time(
    real: RealInteractions, platform: str, persona: int, original: float, jitter: float, rng
) -> float:
    """A repost's time: the original's plus a real delay where the input links reposts; else a
    real repost time of the persona (or the platform) after the original's; else the original's
    moved later by up to `jitter` seconds. NaN where the original has no time."""
    if np.isnan(original):
        return float("nan")
    delays = real.repost_delays.get(platform, np.zeros(0))
    if len(delays):
        return original + float(delays[rng.integers(len(delays))])
    for key in ((platform, persona), (platform,)):
        times = real.repost_times.get(key, np.zeros(0))  # sorted
        first = int(np.searchsorted(times, original, side="right"))
        if first < len(times):  # moved as every drawn time is, never to before the original
            drawn = float(times[rng.integers(first, len(times))]) + rng.uniform(-jitter, jitter)
            return max(drawn, original + 1.0)
    return original + float(rng.uniform(1.0, max(jitter, 2.0)))


def draw_engagement(
    table: pa.Table, real: RealInteractions, rng: np.random.Generator
) -> tuple[pa.Table, list[str]]:
    """The set with each engagement count its platform's real posts carry, drawn per post from
    the real posts of its persona and topic (else persona, else platform); the counts drawn."""
    platform = table.column("platform").to_pylist()
    topic = table.column("topic").to_pylist()
    persona, kind = values_of(table, "persona"), values_of(table, "post_kind")
    drawn = []
    out = table
    for count in POST_COUNTS:
        if not any(count in real.engagement.get((p,), {}) for p in set(platform)):
            continue
        values: list[int | None] = []
        for row, name in enumerate(platform):
            who = -1 if persona[row] is None else int(persona[row])
            chosen = None
            for key in _engagement_keys(name, kind[row] == REPOST, who, topic[row]):
                pool = real.engagement.get(key, {}).get(count)
                if pool is not None and (len(pool) >= MIN_VALUES or len(key) == 1):
                    chosen = int(pool[rng.integers(len(pool))])
                    break
            values.append(chosen)
        out = _set(out, count, pa.array(values, pa.int64()))
        drawn.append(count)
    return out, drawn


def _engagement_keys(platform: str, repost: bool, persona: int, topic) -> tuple[tuple, ...]:
    """The pools a post's counts are drawn from, narrowest first: its kind (repost or not),
    persona and topic; kind and persona; kind; the platform."""
    return (
        (platform, repost, persona, topic),
        (platform, repost, persona),
        (platform, repost),
        (platform,),
    )


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return with_columns(table, {name: values})
