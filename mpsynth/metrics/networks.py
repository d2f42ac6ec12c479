"""The network family: the graphs coordination researchers build from posts, real against
synthetic.

- **co_url, co_domain, co_hashtag**: accounts as nodes, an edge between two accounts that posted
  the same URL (domain, hashtag) within `window` seconds of each other, weighted by how often they
  did (coordinated link sharing; the co-link network of the coordination-network-toolkit). A pair
  joined at least twice is a coordinated pair.
- **co_reply**: the same for two accounts that answered the same post within `window` seconds (the
  toolkit's co-reply network), where the posts carry reply links; a reply or comment that names
  only its thread (a Reddit comment) answers the thread's first post.
- **co_retweet**: the same for two accounts that reshared the same post (a repost's `quote_of`,
  else its text, which on the platforms is the original's), where the posts carry kinds.
- **co_tweet**: two accounts that posted the same text (not a repost) within the window, the text
  normalised as the toolkit does (lower case, @mentions out, whitespace collapsed); a text that
  is empty once normalised (a post of mentions only) joins nobody.
- **co_similar_tweet**: two accounts whose posts (not reposts) within the window have token sets
  of Jaccard similarity at least `similarity` (the toolkit's tokens and default threshold, 0.8).

As in the toolkit, a repost counts in co_retweet only: the links, hashtags and text it carries
are its original's, so it joins no co-link, co-hashtag, co-tweet or co-similar pair.
- **hashtags**: hashtags as nodes, an edge between two used in one post.
- **cross_platform**: (platform, item) nodes for every hashtag, URL domain and mention; an edge
  between two items of one post, and an edge between the same item on two platforms. Its
  cross-platform edge share is how interconnected the platforms are.

For each graph: nodes, edges, density, average clustering, modularity (Louvain), degree and
betweenness centralisation (Freeman; betweenness sampled from `pivots` nodes on large graphs), the
Kolmogorov-Smirnov statistic of the degree distribution against the real graph's, and the share of
edges joining two platforms. The graphs are networkx graphs: at a million posts their size is set
by distinct accounts and items, not posts (benchmarks/structure_scale.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from urllib.parse import urlsplit

import networkx as nx
import numpy as np

from mpsynth.core import schema
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.coordination import (
    SIMILARITY,
    co_sharing_edges,
    co_similar_edges,
    normalised_text,
    token_set,
)
from mpsynth.metrics.extraction import extract
from mpsynth.metrics.stats import ks_statistic
from mpsynth.metrics.structure import Posts

FAMILY = "network"
CO_SHARING = {"co_url": "urls", "co_domain": "domains", "co_hashtag": "hashtags"}
CO_REPLY = "co_reply"
CO_RETWEET = "co_retweet"
CO_TWEET = "co_tweet"
CO_SIMILAR = "co_similar_tweet"
COORDINATION = (*CO_SHARING, CO_REPLY, CO_RETWEET, CO_TWEET, CO_SIMILAR)
ITEMS_PER_POST = 20  # a post's co-occurrence edges are among its first 20 items
EXACT_CLUSTERING_BELOW = 5_000  # nodes; above, sampled (networkx.approximation, 10,000 trials)


@dataclass(frozen=True)
class Rules:
    """When two accounts' posts count as coordinated: within `window` seconds of each other, and
    for co_similar_tweet a Jaccard similarity of at least `similarity`."""

    window: float
    similarity: float = SIMILARITY


@dataclass
class Items:
    """What each post shares: hashtags and mentions (case-folded), URLs and their domains."""

    hashtags: list[list[str]]
    mentions: list[list[str]]
    urls: list[list[str]]
    domains: list[list[str]]
    tweets: list[str] | None = None  # each post's text as co_tweet compares it
    tokens: list[frozenset[str]] | None = None  # each post's tokens as co_similar_tweet does

    def take(self, rows: list[int]) -> Items:
        return Items(
            *(
                None if kind is None else [kind[r] for r in rows]
                for kind in (
                    self.hashtags,
                    self.mentions,
                    self.urls,
                    self.domains,
                    self.tweets,
                    self.tokens,
                )
            )
        )

    def with_texts(self, texts: list[str]) -> Items:
        """These items with each post's normalised text and token set (computed once per set, not
        once per graph rebuilt on a resample)."""
        return Items(
            self.hashtags,
            self.mentions,
            self.urls,
            self.domains,
            [normalised_text(t) for t in texts],
            [token_set(t) for t in texts],
        )

    @classmethod
    def of(cls, texts: list[str], platforms: list[str]) -> Items:
        found = extract(texts, platforms, values=True).values
        assert found is not None
        return cls.found(found["hashtags"], found["mentions"], found["urls"])

    @classmethod
    def found(
        cls, hashtags: list[list[str]], mentions: list[list[str]], urls: list[list[str]]
    ) -> Items:
        """From the values the extraction found (the evaluation's lexical pass keeps them)."""
        return cls(
            hashtags=[[t.casefold() for t in post] for post in hashtags],
            mentions=[[m.casefold() for m in post] for post in mentions],
            urls=urls,
            domains=[[domain(u) for u in post] for post in urls],
        )


def domain(url: str) -> str:
    """The URL's host, lower-cased, without a leading www."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or url
    return host.removeprefix("www.")


def co_occurrence_graph(items: list[list[str]], platforms: list[str] | None = None) -> nx.Graph:
    """Items as nodes, an edge (weighted by posts) between two items of one post; with
    `platforms`, nodes are (platform, item) and the same item on two platforms is joined too."""
    weights: Counter = Counter()
    seen: dict[str, set[str]] = {}
    nodes: set = set()
    for row, values in enumerate(items):
        distinct = list(dict.fromkeys(values))[:ITEMS_PER_POST]
        if platforms is not None:
            for value in distinct:
                seen.setdefault(value, set()).add(platforms[row])
            distinct = [(platforms[row], v) for v in distinct]
        nodes.update(distinct)
        for a, b in combinations(sorted(distinct), 2):
            weights[(a, b)] += 1
    graph = nx.Graph()
    graph.add_nodes_from(sorted(nodes))  # not set order: it changes with the hash seed
    graph.add_weighted_edges_from((a, b, w) for (a, b), w in weights.items())
    for value, where in seen.items():
        for a, b in combinations(sorted(where), 2):
            graph.add_edge((a, value), (b, value), weight=1, link=True)
    return graph


def graph_metrics(
    graph: nx.Graph,
    platform_of: Callable | None,
    real_degrees: np.ndarray | None,
    pivots: int,
    seed: int,
) -> dict[str, float]:
    """The measures of one graph; `platform_of(node)` names a node's platform (None: the graph's
    nodes have none, and no cross-platform share is measured)."""
    n, m = graph.number_of_nodes(), graph.number_of_edges()
    out: dict[str, float] = {"nodes": n, "edges": m}
    if n < 2:
        return out
    degrees = np.array([d for _, d in graph.degree()], dtype=float)
    out["density"] = nx.density(graph)
    out["clustering"] = (
        nx.average_clustering(graph)
        if n < EXACT_CLUSTERING_BELOW
        else nx.approximation.average_clustering(graph, trials=10_000, seed=seed)
    )
    if m:
        communities = nx.community.louvain_communities(graph, weight="weight", seed=seed)
        out["modularity"] = nx.community.modularity(graph, communities, weight="weight")
        if platform_of is not None:
            out["cross_platform_edge_share"] = float(
                np.mean([platform_of(a) != platform_of(b) for a, b in graph.edges()])
            )
    if n > 2:
        out["degree_centralisation"] = float((degrees.max() - degrees).sum() / ((n - 1) * (n - 2)))
        betweenness = np.array(
            list(
                nx.betweenness_centrality(
                    graph, k=pivots if n > pivots else None, seed=seed, normalized=True
                ).values()
            )
        )
        out["betweenness_centralisation"] = float((betweenness.max() - betweenness).sum() / (n - 1))
    if real_degrees is not None and len(real_degrees):
        out["degree_ks"] = ks_statistic(degrees, real_degrees)
    return out


@dataclass
class NetworkResult:
    rows: list[dict]
    drawings: list[dict]  # the top of each set's cross-platform graph: dataset, source, target, ...


def network_metrics(
    sets: dict[str, tuple[Posts, Items]],
    window: float,
    pivots: int,
    seed: int,
    drawn_nodes: int = 40,
    resamples: int = 0,
    similarity: float = SIMILARITY,
) -> NetworkResult:
    """Every graph of every set, per platform and over all platforms (the cross-platform graph over
    all only); the real set first, so the others' degree distributions have it to compare with.

    Intervals: each set but the real reference (and its subsample) is resampled `resamples` times (its posts drawn with
    replacement, every graph rebuilt and measured again); a value's interval is the value +- 1.96
    standard deviations of its resampled values (a normal interval: few resamples estimate a
    spread far better than they do percentiles)."""
    rules = Rules(window, similarity)
    real_platforms = sorted(set(sets[schema.REAL][0].platform.tolist()))
    real_degrees: dict[tuple[str, str], np.ndarray] = {}
    rows: list[dict] = []
    drawings: list[dict] = []
    rng = np.random.default_rng([seed, 17])
    for name in [schema.REAL, *[s for s in sets if s != schema.REAL]]:
        posts, items = sets[name]
        if posts.text is not None and items.tweets is None:
            items = items.with_texts(posts.text.tolist())
        for platform in [*real_platforms, schema.ALL_PLATFORMS]:
            keep = (
                np.ones(len(posts.platform), bool)
                if platform == schema.ALL_PLATFORMS
                else posts.platform == platform
            )
            if not keep.any():
                continue
            reference = None if name == schema.REAL else real_degrees
            found = _measured(posts, items, keep, platform, rules, pivots, seed, reference)
            if name == schema.REAL:
                real_degrees.update(
                    ((graph_name, platform), degrees)
                    for graph_name, (_, degrees, _) in found.items()
                )
            spread = {}
            # the reference and its subsample are yardsticks: the sets read against them get
            # the intervals (the holdout included)
            if resamples and name not in (schema.REAL, schema.REAL_SUBSAMPLE):
                spread = _resampled_spread(
                    posts, items, keep, platform, rules, pivots, seed, real_degrees, resamples, rng
                )
            for graph_name, (measures, _, graph) in found.items():
                for measure, value in measures.items():
                    sd = spread.get((graph_name, measure))
                    ci = (
                        (value - Z95 * sd, value + Z95 * sd)
                        if sd is not None
                        else (float("nan"), float("nan"))
                    )
                    rows.append(
                        metric_row(
                            FAMILY,
                            f"{graph_name}_{measure}",
                            name,
                            platform,
                            value,
                            int(keep.sum()),
                            ci,
                        )
                    )
                if graph_name == "cross_platform":
                    drawings += _top(graph, name, drawn_nodes)
    return NetworkResult(rows, drawings)


Z95 = 1.959964


def _measured(posts, items, keep, platform, rules, pivots, seed, real_degrees) -> dict:
    """graph name -> (its measures, its degrees, the graph) for the kept posts; `real_degrees`
    ((graph, platform) -> the real graph's degrees) adds each graph's degree KS to the real one."""
    found = {}
    for graph_name, graph, platform_of in _graphs(posts, items, keep, platform, rules):
        degrees = np.array([d for _, d in graph.degree()], dtype=float)
        measures = graph_metrics(
            graph,
            platform_of,
            None if real_degrees is None else real_degrees.get((graph_name, platform)),
            pivots,
            seed,
        )
        if graph_name in COORDINATION:
            measures["coordinated_pairs"] = sum(w >= 2 for _, _, w in graph.edges(data="weight"))
        found[graph_name] = (measures, degrees, graph)
    return found


def _resampled_spread(
    posts, items, keep, platform, rules, pivots, seed, real_degrees, resamples, rng
) -> dict[tuple[str, str], float]:
    """(graph, measure) -> the standard deviation of the measure over `resamples` resamples of the
    kept posts (drawn with replacement; a post drawn twice shares what it shares twice)."""
    rows = np.flatnonzero(keep)
    drawn: dict[tuple[str, str], list[float]] = {}
    for _ in range(resamples):
        picked = np.sort(rng.choice(rows, len(rows), replace=True))
        sample = posts.subset(picked)
        every = np.ones(len(picked), bool)
        found = _measured(
            sample, items.take(picked.tolist()), every, platform, rules, pivots, seed, real_degrees
        )
        for graph_name, (measures, _, _) in found.items():
            for measure, value in measures.items():
                drawn.setdefault((graph_name, measure), []).append(value)
    return {
        key: float(np.std(values, ddof=1))
        for key, values in drawn.items()
        if len(values) > 1 and np.isfinite(values).all()
    }


def _graphs(posts: Posts, items: Items, keep: np.ndarray, platform: str, rules: Rules):
    """(name, graph, platform of a node) for every graph of the kept posts."""
    rows = np.flatnonzero(keep)
    platforms = posts.platform[rows].tolist()
    has_accounts = (posts.author[rows] != None).any()  # noqa: E711
    if has_accounts and not np.isnan(posts.seconds[rows]).all():
        keys = [
            f"{p}\x1f{a}" if a is not None else None
            for p, a in zip(platforms, posts.author[rows].tolist(), strict=True)
        ]
        names = sorted({k for k in keys if k is not None})
        code = {k: i for i, k in enumerate(names)}
        accounts = np.array([code[k] if k is not None else -1 for k in keys])
        reposts = _reposts(posts)
        shared = {
            name: [[] if reposts[r] else values for r, values in enumerate(getattr(items, kind))]
            for name, kind in CO_SHARING.items()
        }
        answered = answered_posts(posts)
        if answered is not None:  # the post each one answers
            shared[CO_REPLY] = [[p] if p and not reposts[r] else [] for r, p in enumerate(answered)]
        if posts.kind is not None:  # the post each repost reshares
            shared[CO_RETWEET] = [
                [reshared_key(posts, r)] if reposts[r] else [] for r in range(len(reposts))
            ]
        if items.tweets is not None:
            shared[CO_TWEET] = [
                [t] if t and not reposts[r] else [] for r, t in enumerate(items.tweets)
            ]
        seconds = posts.seconds[rows]
        for graph_name, per_post in shared.items():
            picked = [per_post[r] for r in rows.tolist()]
            yield (
                graph_name,
                _account_graph(co_sharing_edges(accounts, seconds, picked, rules.window), names),
                _account_platform,
            )
        if items.tokens is not None:
            tokens = [None if reposts[r] else items.tokens[r] for r in rows.tolist()]
            edges = co_similar_edges(accounts, seconds, tokens, rules.window, rules.similarity)
            yield CO_SIMILAR, _account_graph(edges, names), _account_platform
    hashtags = [items.hashtags[r] for r in rows.tolist()]
    yield "hashtags", co_occurrence_graph(hashtags), None
    if platform == schema.ALL_PLATFORMS and len(set(platforms)) > 1:
        shared = [
            [f"#{t}" for t in items.hashtags[r]]
            + items.domains[r]
            + [f"@{m}" for m in items.mentions[r]]
            for r in rows.tolist()
        ]
        yield "cross_platform", co_occurrence_graph(shared, platforms), lambda node: node[0]


def coordination_graphs(posts: Posts, items: Items, rules: Rules) -> dict[str, nx.Graph]:
    """Each coordination network of all the posts (accounts as `platform\x1faccount` nodes), as
    the evaluation builds it."""
    if posts.text is not None and items.tweets is None:
        items = items.with_texts(posts.text.tolist())
    every = np.ones(len(posts.platform), bool)
    return {
        name: graph
        for name, graph, _ in _graphs(posts, items, every, schema.ALL_PLATFORMS, rules)
        if name in COORDINATION
    }


def _account_graph(edges: Counter, names: list[str]) -> nx.Graph:
    graph = nx.Graph()  # no pair: no nodes, and that is a finding (0 edges), not a gap
    for (a, b), w in edges.items():
        graph.add_edge(names[a], names[b], weight=w)
    return graph


def _account_platform(node: str) -> str:
    return node.split("\x1f")[0]


def _reposts(posts: Posts) -> np.ndarray:
    if posts.kind is None:
        return np.zeros(len(posts.platform), bool)
    return posts.kind == schema.REPOST


def answered_posts(posts: Posts) -> list[str | None] | None:
    """The post each one answers: its `reply_to`, else for a reply or comment that names no parent
    its thread (a Reddit comment's submission); None where the set has neither."""
    if posts.reply_to is None and (posts.kind is None or posts.thread_id is None):
        return None
    n = len(posts.platform)
    reply_to = posts.reply_to.tolist() if posts.reply_to is not None else [None] * n
    if posts.kind is None or posts.thread_id is None:
        return reply_to
    return [
        to or (thread if kind in schema.ANSWER_KINDS and thread != post else None)
        for to, kind, thread, post in zip(
            reply_to, posts.kind.tolist(), posts.thread_id.tolist(), posts.ids.tolist(), strict=True
        )
    ]


def reshared_key(posts: Posts, row: int) -> str:
    """What a repost reshares: the post its `quote_of` names, else its text (a retweet's text is
    the original's, and inputs such as the IRA tweets give no retweeted id)."""
    target = None if posts.quote_of is None else posts.quote_of[row]
    if target:
        return f"id:{target}"
    return f"text:{posts.text[row] if posts.text is not None else ''}"


def _top(graph: nx.Graph, dataset: str, size: int) -> list[dict]:
    top = sorted(graph.degree(), key=lambda pair: (-pair[1], str(pair[0])))[:size]
    chosen = {node for node, _ in top}
    drawn = []
    for a, b, data in graph.subgraph(chosen).edges(data=True):
        drawn.append(
            {
                "dataset": dataset,
                "platform_a": a[0],
                "item_a": a[1],
                "platform_b": b[0],
                "item_b": b[1],
                "weight": float(data.get("weight", 1)),
                "link": bool(data.get("link", False)),
            }
        )
    return drawn
