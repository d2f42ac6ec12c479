"""The export for coordination researchers, read by the coordination-network-toolkit itself: on the
bundled IRA tweets, the toolkit's co-link network equals the one mpsynth builds from the same posts,
pair by pair and weight by weight."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import numpy as np

from mpsynth.config import IngestConfig
from mpsynth.metrics.networks import Items, co_sharing_edges
from mpsynth.metrics.structure import epoch_seconds
from mpsynth.publish.coordination import write_toolkit_csv
from mpsynth.stages.ingest.normalise import ingest
from tests.conftest import TEST_DATA


def _toolkit(database, *args: str) -> None:
    command = [sys.executable, "-m", "coordination_network_toolkit", str(database), *args]
    subprocess.run(command, check=True, capture_output=True)


def test_the_toolkit_finds_mpsynths_co_link_graph_in_the_export(tmp_path):
    columns = {"label": None, "post_kind": "post_type", "followers": "followers"}
    posts = ingest(
        IngestConfig.model_validate(
            {"inputs": [{"path": str(TEST_DATA / "ira_tweets.csv"), "columns": columns}]}
        )
    ).posts
    rows, skipped = write_toolkit_csv(posts, tmp_path / "ira.csv")
    assert rows + skipped == posts.num_rows and rows > 1_000
    window = 365 * 86_400  # t.co links are rarely shared twice: a year holds two pairs here
    # mpsynth's graph, as the evaluation builds it: accounts per platform, URLs as extracted
    users = [f"{p}:{a}" for p, a in zip(posts["platform"].to_pylist(), posts["author"].to_pylist(),
                                        strict=True)]  # fmt: skip
    names = sorted(set(users))
    codes = np.array([names.index(u) for u in users])
    urls = Items.of(posts["text"].to_pylist(), posts["platform"].to_pylist()).urls
    edges = co_sharing_edges(codes, epoch_seconds(posts["timestamp"]), urls, window)
    ours = {frozenset((names[a], names[b])): w for (a, b), w in edges.items()}
    database = tmp_path / "toolkit.db"
    # the posts that share a URL: the toolkit reads an empty URL field as the URL ""
    _toolkit(database, "preprocess", "--format", "csv", str(tmp_path / "ira-links.csv"))
    _toolkit(database, "compute", "co_link", "--time_window", str(window), "--min_edge_weight", "1")
    with sqlite3.connect(database) as db:
        found = db.execute("select user_1, user_2, weight from co_link_network").fetchall()
    theirs: dict[frozenset, int] = {}
    for user_1, user_2, weight in found:
        if user_1 != user_2:  # the toolkit lists both directions and each account with itself
            key = frozenset((user_1, user_2))
            theirs[key] = max(theirs.get(key, 0), int(weight))
    assert len(ours) >= 2 and max(ours.values()) >= 2  # a coordinated pair among them
    assert theirs == ours
