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
from functools import cached_property
from itertools import combinations
from urllib.parse import urlsplit

import networkx as nx
import numpy as np

from mpsynth.core import schema
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.coordination import (
    SIMILARITY,
    PostPairs,
    normalised_text,
    sharing_pairs,
    similar_pairs,
    token_set,
)
from mpsynth.metrics.extraction import extract
from mpsynth.metrics.paths import betweenness as sampled_betweenness
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
        """These items with each post's normalised text and token set, made once per distinct
        text of the set (a corpus repeats texts: retweets, copies)."""
        read = {text: (normalised_text(text), token_set(text)) for text in set(texts)}
        return Items(
            self.hashtags,
            self.mentions,
            self.urls,
            self.domains,
            [read[t][0] for t in texts],
            [read[t][1] for t in texts],
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
    return CoOccurrence(items, platforms).graph()


class CoOccurrence:
    """The co-occurrence graph's material, read from each post's items once: which nodes each
    post has and which pairs of them. The graph of any subset of the posts, each counted some
    number of times (a resample), is weighed from it, and equals the graph built again from
    those posts (nodes in sorted order, edges in the order their first post gives)."""

    def __init__(self, items: list[list[str]], platforms: list[str] | None = None):
        codes: dict = {}
        node_post, node_code, pair_post, pair_low, pair_high = [], [], [], [], []
        for row, values in enumerate(items):
            distinct = list(dict.fromkeys(values))[:ITEMS_PER_POST]
            if platforms is not None:
                distinct = [(platforms[row], v) for v in distinct]
            mine = sorted((node, codes.setdefault(node, len(codes))) for node in distinct)
            node_post += [row] * len(mine)
            node_code += [code for _, code in mine]
            for (_, a), (_, b) in combinations(mine, 2):
                pair_post.append(row)
                pair_low.append(a)
                pair_high.append(b)
        self.nodes = list(codes)
        self.sorted_codes = np.array(
            sorted(range(len(self.nodes)), key=self.nodes.__getitem__), dtype=np.int64
        )
        self.node_post, self.node_code, self.pair_post = (
            np.array(values, dtype=np.int64) for values in (node_post, node_code, pair_post)
        )
        self.pair = np.array(pair_low, dtype=np.int64) << 32 | np.array(pair_high, np.int64)
        self.platforms = platforms
        if platforms is not None:  # each node's item, coded, for the links across platforms
            values: dict[str, int] = {}
            self.value_of = np.array(
                [values.setdefault(value, len(values)) for _, value in self.nodes], np.int64
            )
            self.values = list(values)

    def graph(self, chosen: np.ndarray | None = None, counts: np.ndarray | None = None) -> nx.Graph:
        """The graph of the posts `chosen` marks (None: all), each counted `counts` times (None:
        once)."""
        graph = nx.Graph()
        on = slice(None) if chosen is None else chosen[self.node_post]
        present = np.zeros(len(self.nodes), bool)
        present[self.node_code[on]] = True
        # sorted, not in set order (which changes with the hash seed): Louvain follows it
        graph.add_nodes_from(self.nodes[c] for c in self.sorted_codes[present[self.sorted_codes]])
        on = slice(None) if chosen is None else chosen[self.pair_post]
        pair, post = self.pair[on], self.pair_post[on]
        if len(pair):
            codes, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
            weights = np.bincount(
                inverse, weights=None if counts is None else counts[post], minlength=len(codes)
            ).astype(np.int64)
            order = np.argsort(first, kind="stable")
            graph.add_weighted_edges_from(
                (self.nodes[code >> 32], self.nodes[code & 0xFFFFFFFF], weight)
                for code, weight in zip(codes[order].tolist(), weights[order].tolist(), strict=True)
            )
        if self.platforms is not None:
            self._join_platforms(graph, present, chosen)
        return graph

    def _join_platforms(self, graph: nx.Graph, present: np.ndarray, chosen) -> None:
        """An edge between the same item's nodes on two platforms, the items in the order their
        first post gives."""
        where: dict[int, list[str]] = {}
        for code in np.flatnonzero(present).tolist():
            where.setdefault(int(self.value_of[code]), []).append(self.nodes[code][0])
        shared = {value for value, platforms in where.items() if len(platforms) > 1}
        if not shared:
            return
        on = slice(None) if chosen is None else chosen[self.node_post]
        values, first = np.unique(self.value_of[self.node_code[on]], return_index=True)
        for value in values[np.argsort(first, kind="stable")].tolist():
            if value in shared:
                item = self.values[value]
                for a, b in combinations(sorted(where[value]), 2):
                    graph.add_edge((a, item), (b, item), weight=1, link=True)


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
        betweenness = sampled_betweenness(graph, pivots, seed)  # networkx's, compiled
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
        graphs = SetGraphs(posts, items, rules)  # each pair found once, not per platform or draw
        for platform in [*real_platforms, schema.ALL_PLATFORMS]:
            keep = (
                np.ones(len(posts.platform), bool)
                if platform == schema.ALL_PLATFORMS
                else posts.platform == platform
            )
            if not keep.any():
                continue
            reference = None if name == schema.REAL else real_degrees
            found = _measured(graphs, keep, None, platform, pivots, seed, reference)
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
                    graphs, keep, platform, pivots, seed, real_degrees, resamples, rng
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


def _measured(graphs: SetGraphs, keep, counts, platform, pivots, seed, real_degrees) -> dict:
    """graph name -> (its measures, its degrees, the graph) for the kept posts, each counted
    `counts` times (None: once); `real_degrees` ((graph, platform) -> the real graph's degrees)
    adds each graph's degree KS to the real one."""
    found = {}
    for graph_name, graph, platform_of in graphs.of(keep, counts, platform):
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
    graphs: SetGraphs, keep, platform, pivots, seed, real_degrees, resamples, rng
) -> dict[tuple[str, str], float]:
    """(graph, measure) -> the standard deviation of the measure over `resamples` resamples of the
    kept posts (drawn with replacement; a post drawn twice shares what it shares twice)."""
    rows = np.flatnonzero(keep)
    drawn: dict[tuple[str, str], list[float]] = {}
    for _ in range(resamples):
        counts = np.bincount(rng.choice(rows, len(rows), replace=True), minlength=len(keep))
        found = _measured(graphs, counts > 0, counts, platform, pivots, seed, real_degrees)
        for graph_name, (measures, _, _) in found.items():
            for measure, value in measures.items():
                drawn.setdefault((graph_name, measure), []).append(value)
    return {
        key: float(np.std(values, ddof=1))
        for key, values in drawn.items()
        if len(values) > 1 and np.isfinite(values).all()
    }


class SetGraphs:
    """Every graph of one set, from what is found once per set: the pairs of posts behind each
    coordination network (over all its posts) and its posts' co-occurring items. A platform's
    graphs and a resample's are weighed from these (PostPairs, CoOccurrence), so neither finds
    pairs or reads items again: at a million posts and 10 resamples that work was most of the
    networks step (benchmarks/network_resamples.py)."""

    def __init__(self, posts: Posts, items: Items, rules: Rules):
        if posts.text is not None and items.tweets is None:
            items = items.with_texts(posts.text.tolist())
        self.items, self.platforms = items, posts.platform
        keys = [
            f"{p}\x1f{a}" if a is not None else None
            for p, a in zip(posts.platform.tolist(), posts.author.tolist(), strict=True)
        ]
        self.names = sorted({k for k in keys if k is not None})
        code = {k: i for i, k in enumerate(self.names)}
        accounts = np.array([code[k] if k is not None else -1 for k in keys], dtype=np.int64)
        self.has_account, self.has_time = accounts >= 0, ~np.isnan(posts.seconds)
        self.pairs: dict[str, PostPairs] = {}
        if not (self.has_account.any() and self.has_time.any()):
            return
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
        for graph_name, per_post in shared.items():
            self.pairs[graph_name] = sharing_pairs(accounts, posts.seconds, per_post, rules.window)
        if items.tokens is not None:
            tokens = [None if reposts[r] else t for r, t in enumerate(items.tokens)]
            self.pairs[CO_SIMILAR] = similar_pairs(
                accounts, posts.seconds, tokens, rules.window, rules.similarity
            )

    def of(self, keep: np.ndarray, counts: np.ndarray | None, platform: str):
        """(name, graph, platform of a node) for every graph of the kept posts, each counted
        `counts` times (None: once)."""
        if self.has_account[keep].any() and self.has_time[keep].any():
            yield from self.coordination(keep, counts)
        yield "hashtags", self.hashtags.graph(keep, counts), None
        if platform == schema.ALL_PLATFORMS and len(set(self.platforms[keep].tolist())) > 1:
            yield "cross_platform", self.shared_items.graph(keep, counts), _first

    def coordination(self, keep: np.ndarray | None = None, counts: np.ndarray | None = None):
        for graph_name, pairs in self.pairs.items():
            yield (
                graph_name,
                _account_graph(pairs.edges(keep, counts), self.names),
                _account_platform,
            )

    @cached_property
    def hashtags(self) -> CoOccurrence:
        return CoOccurrence(self.items.hashtags)

    @cached_property
    def shared_items(self) -> CoOccurrence:
        """Every hashtag, URL domain and mention, by platform."""
        items = self.items
        return CoOccurrence(
            [
                [f"#{t}" for t in hashtags] + domains + [f"@{m}" for m in mentions]
                for hashtags, domains, mentions in zip(
                    items.hashtags, items.domains, items.mentions, strict=True
                )
            ],
            self.platforms.tolist(),
        )


def _first(node: tuple) -> str:
    return node[0]


def coordination_graphs(posts: Posts, items: Items, rules: Rules) -> dict[str, nx.Graph]:
    """Each coordination network of all the posts (accounts as `platform\x1faccount` nodes), as
    the evaluation builds it."""
    return {name: graph for name, graph, _ in SetGraphs(posts, items, rules).coordination()}


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
    # each edge once, in sorted order: a subgraph view iterates its nodes in set order, which
    # changes with the hash seed
    for a, b in sorted(tuple(sorted(edge)) for edge in graph.subgraph(chosen).edges()):
        data = graph.edges[a, b]
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
