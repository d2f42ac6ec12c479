"""Accounts, times and networks: timestamp parsing, personas, the synthetic accounts' structure,
and the structure and network metrics, on the bundled real IRA tweets and YouTube comments."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

from mpsynth.config import IngestConfig, StructureConfig
from mpsynth.core import schema
from mpsynth.metrics.coordination import sharing_pairs
from mpsynth.metrics.networks import (
    Items,
    Rules,
    SetGraphs,
    co_occurrence_graph,
    domain,
    graph_metrics,
    network_metrics,
)
from mpsynth.metrics.paths import betweenness
from mpsynth.metrics.structure import (
    Posts,
    account_linkage,
    gini,
    inter_post_gaps,
    post_depths,
    structure_metrics,
    thread_depths,
)
from mpsynth.stages.ingest.normalise import ingest
from mpsynth.stages.ingest.timestamps import parse_timestamp
from mpsynth.stages.structure import NO_PERSONA, assign_structure, personas, real_structure
from tests.conftest import TEST_DATA, write_csv


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017-09-11T21:26:00", utc(2017, 9, 11, 21, 26)),  # IRA: no zone, read as UTC
        ("2022-10-01T05:08:54Z", utc(2022, 10, 1, 5, 8, 54)),  # MEIU22
        ("2013-11-07T06:20:48.123", utc(2013, 11, 7, 6, 20, 48, 123000)),
        ("2018-10-10T22:19:24+02:00", utc(2018, 10, 10, 20, 19, 24)),
        ("2018-10-10 20:19:24", utc(2018, 10, 10, 20, 19, 24)),
        ("2018-10-10", utc(2018, 10, 10)),
        ("1539209964", utc(2018, 10, 10, 22, 19, 24)),  # epoch seconds
        ("1539209964000", utc(2018, 10, 10, 22, 19, 24)),  # epoch milliseconds
        ("Wed Oct 10 20:19:24 +0000 2018", utc(2018, 10, 10, 20, 19, 24)),  # Twitter API
        ("Wed, 10 Oct 2018 20:19:24 GMT", utc(2018, 10, 10, 20, 19, 24)),  # RFC 2822
        ("9/11/2017 21:26", utc(2017, 9, 11, 21, 26)),  # FiveThirtyEight's original release
        ("9/11/2017 9:26 PM", utc(2017, 9, 11, 21, 26)),
    ],
)
def test_timestamps_in_every_common_form_parse_to_utc(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["", "  ", "yesterday", "3480", "12/45/2017 10:00", "2999-01-01"])
def test_unreadable_or_implausible_timestamps_are_none(value):
    assert parse_timestamp(value) is None


def test_ingest_keeps_rows_with_unreadable_timestamps_and_counts_them_per_file(tmp_path):
    rows = [
        {"platform": "twitter", "id": "a", "text": "one", "timestamp": "2017-09-11T21:26:00"},
        {"platform": "twitter", "id": "b", "text": "two", "timestamp": "last Tuesday"},
        {"platform": "twitter", "id": "c", "text": "three", "timestamp": ""},
        {"platform": "reddit", "id": "d", "text": "four", "timestamp": "1664600934"},
    ]
    columns = ["platform", "id", "text", "timestamp"]
    path = write_csv(tmp_path / "posts.csv", rows, columns)
    result = ingest(IngestConfig.model_validate({"inputs": [{"path": str(path)}]}))
    assert result.posts.num_rows == 4  # no row lost to its timestamp
    assert result.posts.schema.field("timestamp").type == schema.TIMESTAMP
    stamps = result.posts.column("timestamp").to_pylist()
    assert stamps[0] == utc(2017, 9, 11, 21, 26) and stamps[1] is None and stamps[2] is None
    assert result.timestamps == {str(path): {"parsed": 2, "unparsed": 1, "missing": 1}}
    assert result.summary["twitter"]["with_timestamp"] == 1


def test_ingest_keeps_reply_thread_and_quote_ids_where_the_input_has_them(tmp_path):
    rows = [
        {"platform": "reddit", "id": "t1", "text": "a", "author": "x", "parent": ""},
        {"platform": "reddit", "id": "t2", "text": "b", "author": "y", "parent": "t1"},
    ]
    path = write_csv(tmp_path / "posts.csv", rows, ["platform", "id", "text", "author", "parent"])
    config = {"inputs": [{"path": str(path), "columns": {"reply_to": "parent"}}]}
    result = ingest(IngestConfig.model_validate(config))
    assert result.posts.column("reply_to").to_pylist() == [None, "t1"]
    assert result.summary["reddit"]["with_reply_to"] == 1
    assert result.summary["reddit"]["accounts"] == 2


@pytest.fixture(scope="module")
def real_posts() -> pa.Table:
    """The bundled IRA tweets and YouTube comments, as ingest keeps them."""
    config = {
        "inputs": [
            {"path": str(TEST_DATA / "ira_tweets.csv")},
            {"path": str(TEST_DATA / "youtube_spam.csv"), "columns": {"label": None}},
        ]
    }
    return ingest(IngestConfig.model_validate(config)).posts


def test_personas_hold_at_least_k_accounts_and_none_form_below_k():
    rng = np.random.default_rng(0)
    profiles = rng.normal(size=(203, 6))
    labels = personas(profiles, min_size=5, most=200, seed=0)
    sizes = np.bincount(labels)
    assert sizes.min() >= 5 and 10 <= len(sizes) <= 20  # 203 // (2 * 5) groups asked for
    assert len(np.unique(personas(profiles, min_size=5, most=3, seed=0))) <= 3
    assert (personas(profiles[:4], min_size=5, most=200, seed=0) == NO_PERSONA).all()


def _real(real_posts: pa.Table, config: StructureConfig):
    rng = np.random.default_rng(1)
    topics = rng.integers(0, 6, real_posts.num_rows)  # six topics, as the topic stage would give
    return real_structure(real_posts, topics, None, config, seed=0), topics


def _synthetic(real_posts: pa.Table, topics: np.ndarray, n: int, seed: int = 2) -> pa.Table:
    """n synthetic posts as postprocess writes them: MPTM requests for twitter and youtube whose
    examples are real posts of the same topic."""
    rng = np.random.default_rng(seed)
    ids = np.array(real_posts.column("id").to_pylist())
    rows = []
    for number in range(n // 2):
        topic = int(rng.integers(0, 6))
        examples = rng.choice(ids[topics == topic], 9, replace=False).tolist()
        for platform in ("twitter", "youtube"):
            rows.append(
                {
                    "id": f"r{number}:{platform}",
                    "platform": platform,
                    "text": "post",
                    "topic": topic,
                    "request_id": f"r{number}",
                    "example_ids": examples,
                }
            )
    return pa.Table.from_pylist(rows)


def test_synthetic_accounts_follow_personas_and_the_real_posts_per_account(real_posts):
    config = StructureConfig(persona_min_accounts=5)
    real, topics = _real(real_posts, config)
    twitter = real.accounts["twitter"]
    assert np.bincount(twitter.persona).min() >= 5
    synthetic = _synthetic(real_posts, topics, 2000)
    table, summary = assign_structure(synthetic, real, config, seed=0, label="set")
    author = np.array(table.column("author").to_pylist(), dtype=object)
    persona = np.array(table.column("persona").to_pylist(), dtype=object)
    assert all(a.startswith("synthetic_") for a in author)  # pseudonyms, never a real name
    assert not set(author) & set(real_posts.column("author").to_pylist())
    # one persona per account
    for account in set(author.tolist()):
        assert len(set(persona[author == account].tolist())) == 1
    # posts per account drawn from the real accounts: the same heavy tail
    real_counts = twitter.posts
    counts = np.unique(
        author[table.column("platform").to_numpy(zero_copy_only=False) == "twitter"],
        return_counts=True,
    )[1]
    assert counts.max() <= real_counts.max()
    assert abs(gini(counts) - gini(real_counts)) < 0.15
    assert summary["platforms"]["twitter"]["accounts"] == len(counts)
    # timestamps: real times of the platform, moved by at most the jitter
    real_seconds = np.array(
        [t.timestamp() for t in real_posts.column("timestamp").to_pylist() if t is not None]
    )
    seconds = np.array([t.timestamp() for t in table.column("timestamp").to_pylist()])
    nearest = np.abs(seconds[:, None] - real_seconds[None, :]).min(axis=1)
    assert nearest.max() <= config.time_jitter_minutes * 60 + 1
    # no cross-platform authors in the real data: no cross-platform actors
    assert real.cross_platform_share == 0.0 and summary["cross_platform_actors"] == 0


def test_cross_platform_actors_reach_the_share_asked_for_with_one_account_per_platform(
    real_posts, caplog
):
    config = StructureConfig(cross_platform_actors=0.05)
    real, topics = _real(real_posts, config)
    synthetic = _synthetic(real_posts, topics, 600)
    table, summary = assign_structure(synthetic, real, config, seed=0, label="set")
    assert summary["cross_platform_actors"] / summary["actors"] >= 0.05
    accounts_of: dict[str, set] = {}
    for actor, author, platform in zip(
        table.column("actor").to_pylist(),
        table.column("author").to_pylist(),
        table.column("platform").to_pylist(),
        strict=True,
    ):
        accounts_of.setdefault(actor, set()).add((platform, author))
    for accounts in accounts_of.values():  # an actor has at most one account per platform
        platforms = [p for p, _ in accounts]
        assert len(platforms) == len(set(platforms))
    # a few busy Twitter accounts cannot pair with hundreds of one-comment YouTube accounts: the
    # share falls short, and the run says so
    everyone = StructureConfig(cross_platform_actors=0.9)
    _, summary = assign_structure(synthetic, real, everyone, seed=0, label="set")
    assert summary["cross_platform_actors"] / summary["actors"] < 0.9
    assert "short of the 90% asked for" in caplog.text


def test_the_same_posts_get_the_same_structure_and_platforms_without_authors_get_none(real_posts):
    config = StructureConfig()
    real, topics = _real(real_posts, config)
    synthetic = _synthetic(real_posts, topics, 200)
    first, _ = assign_structure(synthetic, real, config, seed=[0, 7], label="a")
    second, _ = assign_structure(synthetic, real, config, seed=[0, 7], label="a-calibrated")
    assert first.equals(second)
    reddit = synthetic.set_column(1, "platform", pa.array(["reddit"] * synthetic.num_rows))
    table, summary = assign_structure(reddit, real, config, seed=0, label="r")
    assert table.column("author").null_count == table.num_rows
    assert table.column("timestamp").null_count == table.num_rows
    assert summary["platforms"]["reddit"]["accounts"] == 0


def test_gini_gaps_and_thread_depths_on_hand_made_cases():
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    posts = Posts(
        platform=np.array(["t"] * 5, dtype=object),
        author=np.array(["a", "a", "b", "a", None], dtype=object),
        seconds=np.array([0.0, 99.0, 5.0, 9.0, 1.0]),
        topic=np.zeros(5, dtype=int),
        reply_to=np.array([None, "p1", "p2", None, "p3"], dtype=object),
        ids=np.array(["p1", "p2", "p3", "p4", "p5"], dtype=object),
    )
    np.testing.assert_allclose(inter_post_gaps(posts), np.log10(1 + np.array([9.0, 90.0])))
    # p1 <- p2 <- p3 <- p5 is one thread four deep; p4 stands alone
    assert sorted(thread_depths(posts).tolist()) == [1.0, 4.0]


def test_a_set_against_itself_has_no_gap_and_a_skewed_one_does(real_posts):
    rng = np.random.default_rng(0)
    real = Posts.of(real_posts, rng.integers(0, 6, real_posts.num_rows))
    same = structure_metrics({"real": real, "copy": real}, 20, 0.95, 0)
    values = {(r["metric"], r["platform"]): r["value"] for r in same if r["dataset"] == "copy"}
    assert values[("posts_per_account_ks", "twitter")] == 0.0
    assert values[("hour_of_day_js", "twitter")] == 0.0
    assert values[("inter_post_time_ks", "all")] == 0.0
    night = real.subset(np.arange(len(real.platform)))
    night.seconds = night.seconds // 86400 * 86400 + 3 * 3600  # every post at 03:00
    skewed = structure_metrics({"real": real, "night": night}, 20, 0.95, 0)
    hour = next(r for r in skewed if r["metric"] == "hour_of_day_js" and r["platform"] == "all")
    assert hour["value"] > 0.5 and hour["ci_low"] <= hour["ci_high"]


def test_account_linkage_finds_an_account_that_mirrors_one_real_account(real_posts):
    rng = np.random.default_rng(0)
    real = Posts.of(real_posts, rng.integers(0, 30, real_posts.num_rows))
    twitter = real.subset(real.platform == "twitter")
    counts = np.unique(twitter.author.astype(str), return_counts=True)
    busiest = counts[0][np.argmax(counts[1])]
    mirror = twitter.subset(twitter.author == busiest)
    mirror.author = np.full(len(mirror.author), "synthetic_twitter_00001", dtype=object)
    share, tested = account_linkage(mirror, real, ratio=0.5)
    assert tested == 1 and share == 1.0
    # spread over every account's topics and hours: close to none in particular
    blend = twitter.subset(rng.permutation(len(twitter.platform))[:300])
    blend.author = np.full(300, "synthetic_twitter_00002", dtype=object)
    assert account_linkage(blend, real, ratio=0.5) == (0.0, 1)


def test_co_sharing_pairs_accounts_within_the_window_only():
    accounts = np.array([0, 1, 2, 0, 1, -1])
    seconds = np.array([0.0, 30.0, 200.0, 1000.0, 1050.0, 5.0])
    items = [["u"], ["u"], ["u"], ["v"], ["v", "u"], ["u"]]
    edges = sharing_pairs(accounts, seconds, items, window=60).edges()
    # 0 and 1 posted u 30 s apart and v 50 s apart; 2 posted u too late; -1 has no account
    assert edges == {(0, 1): 2}
    assert sharing_pairs(accounts, seconds, items, window=10).edges() == {}


def _as_built(graph: nx.Graph) -> tuple[list, list]:
    """A graph as Louvain and the sampled betweenness read it: its nodes in order, and each
    node's neighbours in order with the edges' data."""
    return list(graph.nodes), [(node, list(graph.adj[node].items())) for node in graph.nodes]


@pytest.mark.parametrize("platform", ["twitter", "all"])
def test_a_platform_or_a_resample_weighed_from_the_set_equals_its_graphs_built_again(
    real_posts, platform
):
    """The networks step finds each set's pairs and reads its items once, then weighs a
    platform's or a resample's graphs from them: every graph must be the one built again from
    those posts (copies included), node order and edge order too, which Louvain and the sampled
    betweenness follow."""
    rng = np.random.default_rng(5)
    table = real_posts.take(rng.integers(0, real_posts.num_rows, 3000))  # copies: shared times
    posts = Posts.of(table, np.zeros(table.num_rows, dtype=int))
    items = Items.of(table.column("text").to_pylist(), table.column("platform").to_pylist())
    rules = Rules(3600)
    graphs = SetGraphs(posts, items, rules)
    keep = np.ones(table.num_rows, bool) if platform == "all" else posts.platform == platform
    picked = np.sort(rng.choice(np.flatnonzero(keep), keep.sum(), replace=True))
    counts = np.bincount(picked, minlength=table.num_rows)
    weighed = {name: graph for name, graph, _ in graphs.of(counts > 0, counts, platform)}
    again = SetGraphs(posts.subset(picked), items.take(picked.tolist()), rules)
    built = {name: graph for name, graph, _ in again.of(np.ones(len(picked), bool), None, platform)}
    assert list(weighed) == list(built)
    assert {"co_url", "co_similar_tweet", "hashtags"} <= set(weighed)
    assert ("cross_platform" in weighed) == (platform == "all")
    for name, graph in built.items():
        assert _as_built(weighed[name]) == _as_built(graph), name
    # the resample's copies count: some pair is joined more often than in the set itself
    once = {name: graph for name, graph, _ in graphs.of(keep, None, platform)}
    weights = lambda graph: dict(((a, b), w) for a, b, w in graph.edges(data="weight"))  # noqa: E731
    assert any(
        weights(weighed[name]).get(edge, 0) > w
        for name in ("co_url", "hashtags")
        for edge, w in weights(once[name]).items()
    )


def test_the_cross_platform_graph_joins_the_same_item_across_platforms():
    graph = co_occurrence_graph([["#a", "#b"], ["#a"], ["#c"]], ["twitter", "twitter", "reddit"])
    assert not graph.has_edge(("twitter", "#a"), ("reddit", "#c"))
    graph = co_occurrence_graph([["#a", "#b"], ["#a"]], ["twitter", "reddit"])
    assert graph.edges[("twitter", "#a"), ("reddit", "#a")]["link"]
    measures = graph_metrics(graph, lambda node: node[0], None, pivots=8, seed=0)
    assert measures["nodes"] == 3 and measures["edges"] == 2
    assert measures["cross_platform_edge_share"] == 0.5


@pytest.mark.parametrize("pivots", [None, 8, 64])
def test_the_compiled_betweenness_is_networkx_s_to_the_last_bit(real_posts, pivots):
    """The networks step's betweenness (numba) draws networkx's pivots for the seed and adds in
    networkx's order: the values are equal, not close, on a real co-occurrence graph and on graphs
    with disconnected parts."""
    items = Items.of(
        real_posts.column("text").to_pylist(), real_posts.column("platform").to_pylist()
    )
    real = co_occurrence_graph(
        [[*h, *d] for h, d in zip(items.hashtags, items.domains, strict=True)]
    )
    for graph in (real, nx.gnm_random_graph(400, 500, seed=3), nx.star_graph(9), nx.path_graph(2)):
        n = graph.number_of_nodes()
        expected = nx.betweenness_centrality(
            graph, k=pivots if pivots is not None and n > pivots else None, seed=11
        )
        assert np.array_equal(
            betweenness(graph, pivots, 11), np.array(list(expected.values())), equal_nan=True
        )
    assert real.number_of_nodes() > 64 and betweenness(real, 64, 11).max() > 0


def test_a_star_is_fully_centralised():
    star = nx.star_graph(9)
    measures = graph_metrics(star, None, np.array([1.0] * 10), pivots=64, seed=0)
    assert measures["degree_centralisation"] == pytest.approx(1.0)
    assert measures["betweenness_centralisation"] == pytest.approx(1.0)
    assert measures["clustering"] == 0.0
    assert 0 < measures["degree_ks"] <= 1


def test_domains_and_network_rows_for_every_set_and_platform(real_posts):
    assert domain("https://www.Example.com/a?b") == "example.com"
    assert domain("t.co/abc") == "t.co"
    posts = Posts.of(real_posts, np.zeros(real_posts.num_rows, dtype=int))
    items = Items.of(
        real_posts.column("text").to_pylist(), real_posts.column("platform").to_pylist()
    )
    result = network_metrics({"real": (posts, items), "copy": (posts, items)}, 3600, 64, 0)
    rows = {(r["dataset"], r["platform"], r["metric"]): r["value"] for r in result.rows}
    for dataset in ("real", "copy"):
        assert rows[(dataset, "all", "cross_platform_nodes")] > 100
        assert (dataset, "twitter", "co_url_edges") in rows
    assert rows[("copy", "all", "cross_platform_degree_ks")] == 0.0
    assert (
        rows[("copy", "twitter", "hashtags_modularity")]
        == rows[("real", "twitter", "hashtags_modularity")]
    )
    assert {d["dataset"] for d in result.drawings} == {"real", "copy"}


def test_network_metrics_do_not_depend_on_the_hash_seed():
    """Sampled betweenness and Louvain follow the graph's node order: built from Python sets it
    would change with every process's hash seed, and so would the metrics."""
    import json
    import subprocess
    import sys

    script = (
        "import json, numpy as np\n"
        "from mpsynth.config import IngestConfig\n"
        "from mpsynth.stages.ingest.normalise import ingest\n"
        "from mpsynth.metrics.networks import Items, network_metrics\n"
        "from mpsynth.metrics.structure import Posts\n"
        f"config = {{'inputs': [{{'path': {str(TEST_DATA / 'ira_tweets.csv')!r}}}]}}\n"
        "posts = ingest(IngestConfig.model_validate(config)).posts\n"
        "items = Items.of(posts['text'].to_pylist(), posts['platform'].to_pylist())\n"
        "sets = {'real': (Posts.of(posts, np.zeros(posts.num_rows, int)), items)}\n"
        "rows = network_metrics(sets, 3600, 8, 0).rows\n"
        "print(json.dumps(sorted((r['metric'], r['platform'], r['value']) for r in rows)))\n"
    )
    results = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", script],
                env={**os.environ, "PYTHONHASHSEED": seed},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for seed in ("1", "2")
    ]
    assert results[0] == results[1]
    assert any(m == "hashtags_betweenness_centralisation" for m, _, _ in results[0])


def test_the_lexical_pass_keeps_the_items_the_graphs_use(real_posts):
    """The evaluation extracts hashtags, mentions and URLs once: the lexical pass's features
    table carries them, and the graphs' items read from it equal a fresh extraction."""
    from mpsynth.metrics.lexical import LexicalFeatures
    from mpsynth.stages.evaluate.structure import features_of

    batch = real_posts.select(["id", "platform", "text"]).append_column(
        "path", pa.array(["/posts.parquet"] * real_posts.num_rows)
    )
    features = LexicalFeatures({"/posts.parquet": "real"})(batch)
    assert features.column("hashtags").to_pylist() == [
        len(t) for t in features["hashtags_found"].to_pylist()
    ]
    ids = np.array(real_posts.column("id").to_pylist()[::-1], dtype=object)  # any order
    kept, style = features_of(features, "real", ids)
    fresh = Items.of(
        real_posts.column("text").to_pylist()[::-1], real_posts.column("platform").to_pylist()[::-1]
    )
    assert kept == fresh
    assert sum(map(len, kept.domains)) > 1000  # the IRA tweets link a lot
    # the style features in the same order: each post's length is its text's
    texts = real_posts.column("text").to_pylist()[::-1]
    assert style["chars"].tolist() == [len(t) for t in texts]


def test_real_replies_read_share_depth_and_delay_from_the_links():
    from mpsynth.stages.replies import ANY_TOPIC, real_replies

    posts = pa.table(
        {
            "id": ["a", "b", "c", "d", "e", "f"],
            "platform": ["reddit"] * 5 + ["twitter"],
            # b answers a, c answers b, d answers a parent outside the file, e answers nothing
            "reply_to": [None, "a", "b", "gone", None, None],
            "timestamp": pa.array([0, 60, 180, None, 10, 5], pa.int64()).cast(schema.TIMESTAMP),
        }
    )
    found = real_replies(posts, np.array([1, 1, 2, 1, 1, 1]), max_depth=5)
    assert set(found) == {"reddit"}  # twitter answers nothing: no replies planned there
    reddit = found["reddit"]
    assert reddit.share == 3 / 5
    assert reddit.depths.tolist() == [2, 1, 0, 0, 0]  # b and d answer a first post, c answers b
    assert sorted(reddit.delays.tolist()) == [60, 120]
    assert reddit.examples[1] == ["b", "d"] and reddit.examples[ANY_TOPIC] == ["b", "c", "d"]


def test_planned_replies_follow_the_real_share_and_depths_within_their_topic():
    from mpsynth.stages.replies import NOT_A_REPLY, RealReplies, plan_replies

    rng = np.random.default_rng(0)
    n = 4000
    platform = ["reddit"] * n + ["twitter"] * 500
    topic = rng.integers(0, 8, n + 500).tolist()
    real = {
        "reddit": RealReplies(
            share=0.6, depths=np.array([50.0, 30.0, 20.0]), examples={}, delays=np.array([])
        )
    }
    parent, depth = plan_replies(platform, topic, real, rng)
    replies = np.flatnonzero(parent != NOT_A_REPLY)
    assert len(replies) == round(0.6 * n) and (replies < n).all()  # twitter has no links
    shares = np.bincount(depth[replies], minlength=4)[1:] / len(replies)
    assert np.allclose(shares, [0.5, 0.3, 0.2], atol=0.03)
    for row in replies.tolist():
        assert depth[parent[row]] == depth[row] - 1  # a parent one level up
        assert topic[parent[row]] == topic[row]  # of the same topic (every topic has posts here)
    # a platform of one post keeps it as a first post; no level is skipped when posts run out
    parent, depth = plan_replies(["reddit"], [0], real, rng)
    assert parent.tolist() == [NOT_A_REPLY]


def test_accounts_answering_the_same_post_within_the_window_are_a_co_reply_pair():
    posts = Posts(
        platform=np.array(["reddit"] * 5, dtype=object),
        author=np.array(["op", "x", "y", "z", "x"], dtype=object),
        seconds=np.array([0.0, 10.0, 40.0, 4000.0, 50.0]),
        topic=np.zeros(5, dtype=np.int64),
        # x and y answer p0 30 s apart, z answers it an hour later; x answers y too
        reply_to=np.array([None, "p0", "p0", "p0", "p2"], dtype=object),
        ids=np.array([f"p{i}" for i in range(5)], dtype=object),
    )
    items = Items.found([[]] * 5, [[]] * 5, [[]] * 5)
    rows = network_metrics({schema.REAL: (posts, items)}, 60, 64, 0).rows
    value = {
        r["metric"]: r["value"]
        for r in rows
        if r["platform"] == "reddit" and "co_reply" in r["metric"]
    }
    assert value["co_reply_edges"] == 1 and value["co_reply_nodes"] == 2
    assert value["co_reply_coordinated_pairs"] == 0  # joined once: not yet coordinated
    # without reply links there is no co-reply graph at all
    unlinked = Posts(posts.platform, posts.author, posts.seconds, posts.topic, None, posts.ids)
    rows = network_metrics({schema.REAL: (unlinked, items)}, 60, 64, 0).rows
    assert not any("co_reply" in r["metric"] for r in rows)


def test_a_columns_day_month_order_comes_from_its_unambiguous_dates(tmp_path, caplog):
    """`11/08/2017` in a file whose `18/10/2015` proves day first is 11 August, not 8 November;
    a file with no evidence reads it month first and says so; the setting decides when given."""
    rows = [
        {"platform": "twitter", "id": "a", "text": "one", "timestamp": "11/08/2017 13:51"},
        {"platform": "twitter", "id": "b", "text": "two", "timestamp": "18/10/2015 09:00"},
        {"platform": "twitter", "id": "c", "text": "three", "timestamp": "05/03/2016"},
    ]
    columns = ["platform", "id", "text", "timestamp"]
    proved = write_csv(tmp_path / "dayfirst.csv", rows, columns)
    unsure = write_csv(tmp_path / "unsure.csv", [rows[0], rows[2]], columns)

    def read(path, **spec):
        config = IngestConfig.model_validate({"inputs": [{"path": str(path), **spec}]})
        return ingest(config)

    result = read(proved)
    stamps = result.posts.column("timestamp").to_pylist()
    assert stamps == [utc(2017, 8, 11, 13, 51), utc(2015, 10, 18, 9), utc(2016, 3, 5)]
    counts = result.timestamps[str(proved)]
    assert counts["date_order"] == "day first" and counts["ambiguous_dates"] == 2
    with caplog.at_level("WARNING", logger="mpsynth.stages.ingest.normalise"):
        result = read(unsure)
    assert result.posts.column("timestamp").to_pylist()[0] == utc(2017, 11, 8, 13, 51)
    assert "2 dates such as '11/08/2017 13:51' fit both day/month orders" in caplog.text
    assert result.timestamps[str(unsure)]["date_order_from"] == "no evidence"
    told = read(unsure, dayfirst=True).posts.column("timestamp").to_pylist()
    assert told == [utc(2017, 8, 11, 13, 51), utc(2016, 3, 5)]


def test_float_written_ids_match_loops_are_broken_and_dangling_links_counted(tmp_path, caplog):
    """Integer ids with `reply_to` written as floats (as pandas writes a column with gaps) link
    up; a self-reply and a two-post loop lose their closing link, so depths are chain lengths."""
    rows = [
        {"platform": "reddit", "id": "1", "text": "root", "reply_to": ""},
        {"platform": "reddit", "id": "2", "text": "reply", "reply_to": "1.0"},
        {"platform": "reddit", "id": "3", "text": "deeper", "reply_to": "2.0"},
        {"platform": "reddit", "id": "4", "text": "to itself", "reply_to": "4"},
        {"platform": "reddit", "id": "5", "text": "loop a", "reply_to": "6"},
        {"platform": "reddit", "id": "6", "text": "loop b", "reply_to": "5"},
        {"platform": "reddit", "id": "7", "text": "outside", "reply_to": "99.0"},
    ]
    path = write_csv(tmp_path / "links.csv", rows, ["platform", "id", "text", "reply_to"])
    with caplog.at_level("WARNING", logger="mpsynth.stages.ingest.links"):
        result = ingest(IngestConfig.model_validate({"inputs": [{"path": str(path)}]}))
    links = result.posts.column("reply_to").to_pylist()
    assert links == [None, "1", "2", None, "6", None, "99"]
    counts = result.summary["reddit"]
    assert (counts["self_replies"], counts["reply_loops"], counts["dangling_reply_to"]) == (1, 1, 1)
    assert "1 self replies, 1 reply loops" in caplog.text
    depth, _ = post_depths(result.posts["id"].to_pylist(), links)
    assert [depth[i] for i in "1234567"] == [1, 2, 3, 1, 2, 1, 2]
    # a set made elsewhere, loops and all: depths stay chain lengths
    depth, _ = post_depths(["a", "b", "c"], ["b", "a", "c"])
    assert max(depth.values()) <= 2


def test_mostly_dangling_links_are_warned_about(tmp_path, caplog):
    rows = [
        {"platform": "twitter", "id": str(i), "text": f"post {i}", "reply_to": f"{i + 100}"}
        for i in range(10)
    ]
    path = write_csv(tmp_path / "dangling.csv", rows, ["platform", "id", "text", "reply_to"])
    with caplog.at_level("WARNING", logger="mpsynth.stages.ingest.links"):
        result = ingest(IngestConfig.model_validate({"inputs": [{"path": str(path)}]}))
    assert result.summary["twitter"]["dangling_reply_to"] == 10
    assert "twitter: 10 of 10 reply_to links name no post of the input" in caplog.text


def test_replies_under_a_refused_reply_are_counted_at_the_depth_their_chain_has():
    """Every first-level reply refused: the replies planned under them answer those posts as they
    stand, so the summary counts them at depth 1 (their chain), not the planned 2 or 3."""
    from mpsynth.config import GeneratorConfig, PromptsConfig
    from mpsynth.stages.replies import RealReplies, write_replies

    n = 60
    table = pa.table(
        {
            "id": [f"s{i}" for i in range(n)],
            "platform": ["reddit"] * n,
            "topic": [i % 3 for i in range(n)],
            "text": [f"post number {i}" for i in range(n)],
            "request_id": ["r"] * n,
            "example_ids": [[] for _ in range(n)],
            "strategy": ["mptm"] * n,
        }
    )
    real = {
        "reddit": RealReplies(
            share=0.7,
            depths=np.array([1.0, 1.0, 1.0]),
            examples={None: ["x1", "x2"]},
            delays=np.array([]),
        )
    }
    calls = []

    def answer(requests):
        calls.append(requests.num_rows)
        if len(calls) == 1:  # the first round (depth 1): every answer refused
            return {}
        return {
            rid: [f"a reply {k}" for k in range(posts)]
            for rid, posts in zip(
                requests["request_id"].to_pylist(),
                requests["posts_per_platform"].to_pylist(),
                strict=True,
            )
        }

    generator = GeneratorConfig.model_validate({"name": "g", "provider": {"kind": "markov"}})
    replies = write_replies(
        table,
        real,
        PromptsConfig(),
        generator,
        2,
        lambda post_id: "a real reply",
        lambda text, platform: text,
        answer,
        np.random.default_rng(4),
        retries=0,
    )
    summary = replies.summary["platforms"]["reddit"]
    depth, _ = post_depths(table["id"].to_pylist(), replies.reply_to)
    ids = table["id"].to_pylist()
    chains = Counter(depth[i] - 1 for i, to in zip(ids, replies.reply_to, strict=True) if to)
    assert summary["written"] > 0 and summary["by_depth"] == dict(chains)
    assert max(summary["by_depth"]) <= 2  # planned 2 and 3, one level lost above each
    assert summary["shallower_than_planned"] == summary["written"]
