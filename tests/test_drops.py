"""Posts a reviewer drops: the ids file, the run's list, and a set without them and their replies."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpsynth.core.errors import ConfigError
from mpsynth.stages.drops import (
    EVERY_SET,
    apply_drops,
    dropped_posts,
    read_drops,
    read_ids_file,
    record_drops,
)


def test_the_ids_file_takes_the_viewers_export_and_names_a_bad_line(tmp_path):
    ids = tmp_path / "flagged.txt"
    ids.write_text("# flagged in the viewer\nmarkov-mptm\ta-1\n\nb-2\n")
    assert read_ids_file(ids) == [("markov-mptm", "a-1"), (EVERY_SET, "b-2")]
    ids.write_text("markov-mptm\ta-1\textra\n")
    with pytest.raises(ConfigError, match=r"flagged.txt, line 1: expected 'SET<TAB>ID'"):
        read_ids_file(ids)
    ids.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no ids in it"):
        read_ids_file(ids)
    with pytest.raises(ConfigError, match="no such file"):
        read_ids_file(tmp_path / "absent.txt")


def test_the_list_grows_once_per_post_and_changes_the_fingerprint(tmp_path):
    assert dropped_posts(tmp_path) == {}  # a run nobody reviewed keeps its fingerprints
    assert record_drops(tmp_path, [("s", "a"), ("s", "a"), ("s", "b")], "spam") == 2
    first = dropped_posts(tmp_path)
    assert record_drops(tmp_path, [("s", "b")], "spam") == 0
    assert dropped_posts(tmp_path) == first
    assert record_drops(tmp_path, [(EVERY_SET, "c")], "off topic") == 1
    assert dropped_posts(tmp_path) != first
    assert read_drops(tmp_path).column("reason").to_pylist() == ["spam", "spam", "off topic"]
    with pytest.raises(ConfigError, match="local copy"):
        record_drops("s3://bucket/run", [("s", "a")], "spam")


def test_a_dropped_post_takes_the_replies_beneath_it_and_is_kept_aside(tmp_path):
    table = pa.table(
        {
            "id": ["p1", "r1", "r2", "p2", "q"],
            "text": ["post", "reply", "reply to the reply", "other post", "kept"],
            "reply_to": [None, "p1", "r1", None, "p2"],
        }
    )
    record_drops(tmp_path, [("mine", "p1"), ("other", "p2")], "flagged in review")
    out = tmp_path / "structure"
    out.mkdir()
    kept, counts = apply_drops(read_drops(tmp_path), table, "mine", out)
    assert kept["id"].to_pylist() == ["p2", "q"]  # p2 is listed for another set only
    assert counts == {"dropped": 1, "replies_dropped": 2}
    aside = pq.read_table(out / "dropped" / "mine.parquet")
    assert aside["id"].to_pylist() == ["p1", "r1", "r2"]
    assert aside["reason"].to_pylist() == [
        "flagged in review",
        "a reply or repost beneath a dropped post",
        "a reply or repost beneath a dropped post",
    ]
    untouched, none = apply_drops(read_drops(tmp_path), table, "unlisted", out)
    assert untouched.equals(table) and none == {}
