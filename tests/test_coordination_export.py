"""The export for coordination researchers, read by the coordination-network-toolkit itself: on the
bundled IRA tweets, each of the toolkit's five networks (co-link, co-retweet, co-tweet,
co-similar-tweet, co-reply) equals the one mpsynth's evaluation builds from the same posts, pair by
pair and weight by weight."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys

import pyarrow as pa
import pytest

from mpsynth.config import IngestConfig
from mpsynth.metrics.networks import Items, Rules, coordination_graphs
from mpsynth.metrics.structure import Posts
from mpsynth.publish.coordination import TOOLKIT_NETWORKS, write_toolkit_csv
from mpsynth.stages.ingest.normalise import ingest
from tests.conftest import TEST_DATA

# t.co links are rarely shared twice: a year holds coordinated pairs in the 2,000-tweet sample
WINDOW = 365 * 86_400


def _with_replies(posts: pa.Table) -> pa.Table:
    """The IRA tweets name no replied-to tweet, so replies are made from what they show: a tweet
    opening with @handle answers one post of that handle (the same post for every such tweet)."""
    opening = [re.match(r"'?@(\w+)", text) for text in posts["text"].to_pylist()]
    reply_to = [f"post-of-{m.group(1).lower()}" if m else None for m in opening]
    return posts.append_column("reply_to", pa.array(reply_to, pa.string()))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The IRA posts (kinds from post_type), exported; their toolkit database, preprocessed."""
    out = tmp_path_factory.mktemp("coordination")
    columns = {"label": None, "post_kind": "post_type", "followers": "followers"}
    posts = ingest(
        IngestConfig.model_validate(
            {"inputs": [{"path": str(TEST_DATA / "ira_coordinated.csv"), "columns": columns}]}
        )
    ).posts
    posts = _with_replies(posts.drop_columns(["reply_to"]))
    rows, skipped = write_toolkit_csv(posts, out / "ira.csv")
    assert rows + skipped == posts.num_rows and rows > 1_000
    databases = {}
    for suffix in ("", "-links"):
        # the posts that share a URL apart: the toolkit reads an empty URL field as the URL ""
        databases[suffix] = out / f"toolkit{suffix}.db"
        _toolkit(databases[suffix], "preprocess", "--format", "csv", str(out / f"ira{suffix}.csv"))
    return posts, databases


def _toolkit(database, *args: str) -> None:
    command = [sys.executable, "-m", "coordination_network_toolkit", str(database), *args]
    subprocess.run(command, check=True, capture_output=True)


@pytest.mark.parametrize("network", TOOLKIT_NETWORKS)
def test_the_toolkit_finds_mpsynths_graph_in_the_export(exported, network):
    posts, databases = exported
    ours_name, suffix = TOOLKIT_NETWORKS[network]
    table = Posts.of(posts)
    items = Items.of(posts["text"].to_pylist(), posts["platform"].to_pylist())
    graph = coordination_graphs(table, items, Rules(WINDOW))[ours_name]
    ours = {
        frozenset(n.replace("\x1f", ":") for n in (a, b)): w
        for a, b, w in graph.edges(data="weight")
    }
    database = databases[suffix]
    _toolkit(
        database,
        "compute",
        network,
        "--time_window",
        str(WINDOW),
        "--min_edge_weight",
        "1",
        "--similarity_threshold",
        "0.8",
    )
    with sqlite3.connect(database) as db:
        found = db.execute(f"select user_1, user_2, weight from {network}_network").fetchall()
    theirs: dict[frozenset, int] = {}
    for user_1, user_2, weight in found:
        if user_1 != user_2:  # the toolkit lists both directions and each account with itself
            key = frozenset((user_1, user_2))
            theirs[key] = max(theirs.get(key, 0), int(weight))
    assert theirs == ours
    assert len(ours) >= 2  # a graph with pairs to compare
