"""Calibration: bring each platform's synthetic share of posts with at least one hashtag, mention,
URL and emoji to the real share, by adding to or removing from a seeded subset of posts.

What is added is shaped by the real posts of the same platform: how many per post (the real
per-post counts of posts that have any), where in the post (start, middle or end, as real posts
place them), and what: hashtags drawn from the same topic's real hashtags (the platform's when the
topic has none), URLs with the platform's real link domains and path lengths and a fresh path,
mentions from a pool of pseudonymous handles (`@user_1f3a9c0b`, never a real one), emojis from the
platform's real emojis. Where the synthetic share is too high, every entity of that kind is removed
from a subset of the posts that have one. Entities are found by the same rules the lexical features
count with, so the measured share is the one calibrated. Every change is recorded per post.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mpsynth.metrics.extraction import entity_spans
from mpsynth.metrics.lexical import emoji_spans

KINDS = ("hashtags", "mentions", "urls", "emojis")
PLACES = ("start", "middle", "end")
HANDLE_POOL = 1000
URL_SAMPLE = 5000
CHANGES = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # hashtags | mentions | urls | emojis
        pa.field("action", pa.string(), nullable=False),  # added | removed
        pa.field("entity", pa.string(), nullable=False),
    ]
)
SCHEME = re.compile(r"(?i)^(https?://)?([^/?#]+)(.*)$")


def spans(text: str, platform: str | None, kind: str) -> list[tuple[int, int]]:
    """Where the entities of one kind are in a post, by the lexical features' rules."""
    if kind == "emojis":
        return [(start, end) for start, end, _ in emoji_spans(text)]
    return [(s, e) for s, e, k in entity_spans(text, platform) if k == kind]


def spans_by_kind(text: str, platform: str | None) -> dict[str, list[tuple[int, int]]]:
    """`spans` of every kind at once: the post is read once for its entities, once for emojis."""
    found: dict[str, list[tuple[int, int]]] = {kind: [] for kind in KINDS}
    for start, end, kind in entity_spans(text, platform):
        if kind in found:
            found[kind].append((start, end))
    found["emojis"] = [(start, end) for start, end, _ in emoji_spans(text)]
    return found


@dataclass
class KindProfile:
    share: float  # of posts with at least one
    counts: list[int]  # per-post counts of the posts with any
    places: np.ndarray  # probabilities of start, middle, end


@dataclass
class PlatformProfile:
    posts: int
    kinds: dict[str, KindProfile]
    hashtags: Counter = field(default_factory=Counter)
    hashtags_by_topic: dict[int, Counter] = field(default_factory=dict)
    urls: list[tuple[str, str, int]] = field(default_factory=list)  # scheme, domain, path length
    emojis: Counter = field(default_factory=Counter)


def profile(
    texts: list[str], platforms: list[str], topics: list[int | None] | None = None
) -> dict[str, PlatformProfile]:
    """What the real posts of each platform hold: shares, per-post counts, places and values."""
    topics = topics or [None] * len(texts)
    by_platform: dict[str, list[int]] = {}
    for row, platform in enumerate(platforms):
        by_platform.setdefault(platform, []).append(row)
    profiles = {}
    for platform, rows in sorted(by_platform.items()):
        found = PlatformProfile(len(rows), {})
        located_in = [spans_by_kind(texts[row], platform) for row in rows]
        for kind in KINDS:
            counts, places = [], np.zeros(3)
            for row, located_by_kind in zip(rows, located_in, strict=True):
                text = texts[row]
                located = located_by_kind[kind]
                if not located:
                    continue
                counts.append(len(located))
                stripped = len(text.rstrip())
                for start, end in located:
                    before = text[:start].strip()
                    places[0 if not before else 2 if end >= stripped else 1] += 1
                    value = text[start:end]
                    match kind:
                        case "hashtags":
                            found.hashtags[value] += 1
                            if topics[row] is not None and topics[row] >= 0:
                                found.hashtags_by_topic.setdefault(topics[row], Counter())[
                                    value
                                ] += 1
                        case "urls" if len(found.urls) < URL_SAMPLE:
                            scheme, domain, path = SCHEME.match(value).groups()  # type: ignore[union-attr]
                            found.urls.append((scheme or "", domain, max(0, len(path) - 1)))
                        case "emojis":
                            found.emojis[value] += 1
            found.kinds[kind] = KindProfile(
                len(counts) / len(rows),
                counts,
                places / places.sum() if places.sum() else np.array([0.0, 0.0, 1.0]),
            )
        profiles[platform] = found
    return profiles


@dataclass
class Calibrated:
    table: pa.Table  # the synthetic set with calibrated texts
    changes: pa.Table  # CHANGES: one row per entity added or removed
    shares: dict[str, dict[str, dict[str, float]]]  # platform -> kind -> real / before / after


def calibrate(
    table: pa.Table, profiles: dict[str, PlatformProfile], seed: int, kinds=KINDS
) -> Calibrated:
    """The synthetic set (id, platform, text, topic) with each platform's share of posts holding
    each kind brought to the real share. Platforms the real posts lack are left alone."""
    rng = np.random.default_rng(seed)
    texts = table.column("text").to_pylist()
    platforms = table.column("platform").to_pylist()
    ids = table.column("id").to_pylist()
    topics = (
        table.column("topic").to_pylist() if "topic" in table.column_names else [None] * len(ids)
    )
    handles = [f"@user_{rng.integers(0, 16**8):08x}" for _ in range(HANDLE_POOL)]
    draw = _Draws()
    changes: dict[str, list] = {name: [] for name in CHANGES.names}
    shares: dict[str, dict[str, dict[str, float]]] = {}
    by_platform: dict[str, list[int]] = {}
    for row, platform in enumerate(platforms):
        by_platform.setdefault(platform, []).append(row)
    for platform, rows in sorted(by_platform.items()):
        real = profiles.get(platform)
        if real is None:
            continue
        shares[platform] = {}
        for kind in kinds:
            target = real.kinds[kind]
            has = np.array([bool(spans(texts[r], platform, kind)) for r in rows])
            before = float(has.mean())
            change = round(target.share * len(rows)) - int(has.sum())
            if change > 0 and target.counts:
                counts = np.asarray(target.counts)  # once: a list is made an array per draw
                for r in rng.choice(np.array(rows)[~has], change, replace=False).tolist():
                    count = int(rng.choice(counts))
                    for _ in range(count):
                        value = _new_value(kind, real, topics[r], handles, rng, draw)
                        texts[r] = _insert(texts[r], value, rng.choice(3, p=target.places), rng)
                        _record(changes, ids[r], kind, "added", value)
            elif change < 0:
                for r in rng.choice(np.array(rows)[has], -change, replace=False).tolist():
                    texts[r], removed = _remove(texts[r], spans(texts[r], platform, kind))
                    for value in removed:
                        _record(changes, ids[r], kind, "removed", value)
            after = float(np.mean([bool(spans(texts[r], platform, kind)) for r in rows]))
            shares[platform][kind] = {"real": target.share, "before": before, "after": after}
    out = table.set_column(
        table.column_names.index("text"), table.schema.field("text"), pa.array(texts, pa.string())
    )
    return Calibrated(out, pa.Table.from_pydict(changes, schema=CHANGES), shares)


def _record(changes: dict[str, list], post_id: str, kind: str, action: str, value: str) -> None:
    changes["id"].append(post_id)
    changes["kind"].append(kind)
    changes["action"].append(action)
    changes["entity"].append(value)


class _Draws:
    """Values drawn from counters by their counts, each counter's cumulative weights worked out
    once per calibration (a million posts draw hundreds of thousands of values from counters of
    thousands); the same draws, from the same generator, as `rng.choice(n, p=weights / total)`."""

    def __init__(self) -> None:
        self._cdfs: dict[int, tuple[Counter, list[str], np.ndarray]] = {}

    def __call__(self, counter: Counter, rng: np.random.Generator) -> str | None:
        if not counter:
            return None
        if id(counter) not in self._cdfs:
            values = list(counter)
            weights = np.array([counter[v] for v in values], dtype=float)
            cdf = (weights / weights.sum()).cumsum()
            cdf /= cdf[-1]
            self._cdfs[id(counter)] = (counter, values, cdf)  # the counter held: its id stays
        _, values, cdf = self._cdfs[id(counter)]
        return values[int(cdf.searchsorted(rng.random(), side="right"))]


def _new_value(
    kind: str,
    real: PlatformProfile,
    topic: int | None,
    handles: list[str],
    rng: np.random.Generator,
    draw: _Draws,
) -> str:
    match kind:
        case "hashtags":
            drawn = draw(real.hashtags_by_topic.get(topic, Counter()), rng) or draw(
                real.hashtags, rng
            )
            return drawn or "#news"
        case "mentions":
            return handles[int(rng.integers(len(handles)))]
        case "urls":
            if not real.urls:
                return "https://example.com/" + _slug(8, rng)
            scheme, domain, path_length = real.urls[int(rng.integers(len(real.urls)))]
            return f"{scheme}{domain}/{_slug(max(path_length, 4), rng)}"
        case _:
            return draw(real.emojis, rng) or "😂"


def _slug(length: int, rng: np.random.Generator) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), min(length, 40)))


def _insert(text: str, value: str, place: int, rng: np.random.Generator) -> str:
    """`value` at the start, after a random inner word, or at the end, set off by spaces."""
    if place == 0 or not text.strip():
        return f"{value} {text.lstrip()}"
    if place == 2:
        return f"{text.rstrip()} {value}"
    gaps = [m.start() for m in re.finditer(r"\s+", text.strip())]
    if not gaps:
        return f"{text.rstrip()} {value}"
    offset = len(text) - len(text.lstrip())
    at = offset + gaps[int(rng.integers(len(gaps)))]
    return f"{text[:at]} {value}{text[at:]}"


def _remove(text: str, located: list[tuple[int, int]]) -> tuple[str, list[str]]:
    removed = [text[start:end] for start, end in located]
    for start, end in sorted(located, reverse=True):
        text = text[:start] + text[end:]
    return re.sub(r"[ \t]{2,}", " ", text).strip(), removed
