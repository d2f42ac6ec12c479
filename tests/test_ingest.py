from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mpsynth.config import IngestConfig
from mpsynth.core.errors import InputError
from mpsynth.core.platforms import normalise_platform
from mpsynth.stages.ingest.normalise import ingest
from tests.conftest import DEMO_COLUMNS, first_per_platform, read_rows, write_csv


def _config(*inputs: dict) -> IngestConfig:
    return IngestConfig.model_validate({"inputs": list(inputs)})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("X", "twitter"),
        ("x.com", "twitter"),
        ("https://www.Twitter.com/", "twitter"),
        (" YouTube ", "youtube"),
        ("FB", "facebook"),
        ("Reddit", "reddit"),
        ("Mastodon", "mastodon"),
        ("", None),
        (None, None),
    ],
)
def test_platform_names_are_normalised(raw, expected):
    assert normalise_platform(raw) == expected


def test_extra_aliases_from_config():
    assert normalise_platform("Bluesky Social", {"bluesky social": "bluesky"}) == "bluesky"


def test_real_rows_are_kept_byte_for_byte(tmp_path, demo_rows):
    rows = first_per_platform(demo_rows, 60)
    # the youtube row with embedded newlines and commas inside its quoted text
    tricky = next(r for r in demo_rows if r["platform"] == "youtube" and "\n" in r["text"])
    rows.append(tricky)
    path = write_csv(tmp_path / "posts.csv", rows, DEMO_COLUMNS)
    result = ingest(_config({"path": str(path)}))
    assert result.posts.num_rows == len(rows) == 241
    assert result.quarantine.num_rows == 0
    texts = dict(zip(result.posts["id"].to_pylist(), result.posts["text"].to_pylist(), strict=True))
    for row in rows:
        assert texts[row["id"]] == row["text"]
    assert result.summary["youtube"] == {
        "read": 61,
        "kept": 61,
        "quarantined": 0,
        "control_chars_stripped": 0,
        # the structure the comments carry: 61 commenters, one comment without a date
        "accounts": 61,
        "with_author": 61,
        "with_timestamp": 60,
        "with_reply_to": 0,
        "with_thread_id": 0,
        "with_quote_of": 0,
        "with_lang": 37,  # declared where the source dataset has a language column
        "languages": {"en": 37},
        **dict.fromkeys(["dangling_reply_to", "dangling_quote_of", "self_replies"], 0),
        "reply_loops": 0,
        "self_quotes": 0,
        "quote_loops": 0,
    }
    from mpsynth.stages.ingest.normalise import language_code

    declared = {r["id"]: language_code(r["lang"]) for r in rows}  # "und" is no language
    kept = zip(result.posts["id"].to_pylist(), result.posts["lang"].to_pylist(), strict=True)
    assert dict(kept) == declared


def test_language_codes_keep_the_primary_subtag_and_drop_empty_values():
    from mpsynth.stages.ingest.normalise import language_code

    assert [language_code(v) for v in ("en", "EN-us", " nl_BE ", "und", "", None)] == [
        "en",
        "en",
        "nl",
        None,
        None,
        None,
    ]


def test_bad_rows_are_quarantined_with_reasons(tmp_path, demo_rows):
    rows = [dict(r) for r in first_per_platform(demo_rows, 5)]  # 20 real rows
    rows[1]["text"] = "   "
    rows[7]["platform"] = ""
    rows[12]["id"] = rows[11]["id"]
    path = write_csv(tmp_path / "posts.csv", rows, DEMO_COLUMNS)
    # one more real row whose text holds bytes that are not UTF-8
    raw = path.read_bytes() + b"reddit,bad-bytes,,,caf\xe9 \xff is open,en,\n"
    path.write_bytes(raw)

    result = ingest(_config({"path": str(path)}))
    read = sum(v["read"] for v in result.summary.values())
    kept = sum(v["kept"] for v in result.summary.values())
    quarantined = sum(v["quarantined"] for v in result.summary.values())
    assert read == 21 == kept + quarantined
    assert result.posts.num_rows == kept == 17
    assert result.quarantine.num_rows == quarantined == 4
    # source_row is the row's first line in the file (header = line 1; texts span lines)
    lines = path.read_bytes().split(b"\n")
    by_id = {}
    for row in result.quarantine.to_pylist():
        assert lines[row["source_row"] - 1].startswith(f"{row['platform'] or ''},".encode())
        by_id[row["id"]] = row["reason"]
    first_of_dup = next(r for r in result.posts.to_pylist() if r["id"] == rows[11]["id"])
    assert by_id[rows[1]["id"]] == "empty text"
    assert by_id[rows[7]["id"]] == "no platform"
    assert by_id[rows[12]["id"]] == (
        f"duplicate id (first seen at {path}:{first_of_dup['source_row']})"
    )
    assert by_id["bad-bytes"].startswith("undecodable bytes in column 'text'")
    assert result.quarantine.filter(pc.equal(result.quarantine["id"], "bad-bytes"))[
        "source_row"
    ].to_pylist() == [len(lines) - 1]


def test_missing_text_column_names_column_and_file(tmp_path, demo_rows):
    path = write_csv(tmp_path / "no_text.csv", demo_rows[:5], ["platform", "id", "author"])
    with pytest.raises(InputError) as error:
        ingest(_config({"path": str(path)}))
    assert "'text'" in str(error.value) and str(path) in str(error.value)


def test_missing_file_is_named(tmp_path, monkeypatch):
    with pytest.raises(InputError, match=r"input not found: .*absent\.csv$"):
        ingest(_config({"path": str(tmp_path / "absent.csv")}))
    monkeypatch.chdir(tmp_path)  # a relative path: the directory it was looked for in is named
    with pytest.raises(InputError) as error:
        ingest(_config({"path": "data/demo/posts.csv"}))
    assert str(error.value) == (
        f"input not found: data/demo/posts.csv (looked in {tmp_path}: paths are relative to it)"
    )


def test_explicitly_mapped_optional_column_must_exist(tmp_path, demo_rows):
    path = write_csv(tmp_path / "p.csv", demo_rows[:5], ["platform", "id", "text"])
    ingest(_config({"path": str(path)}))  # default-named optional columns may be absent
    with pytest.raises(InputError, match="no column 'user'"):
        ingest(_config({"path": str(path), "columns": {"author": "user"}}))


def test_jsonl_parquet_and_folder_inputs_with_mapping(tmp_path):
    reddit = read_rows("goemotions.csv")[:30]
    folder = tmp_path / "in"
    folder.mkdir()
    with (folder / "a.jsonl").open("w", encoding="utf-8") as handle:
        for row in reddit[:15]:
            handle.write(json.dumps({"body": row["text"], "uid": row["id"]}) + "\n")
        handle.write("{not json\n")
    pq.write_table(
        pa.table({"body": [r["text"] for r in reddit[15:]], "uid": [r["id"] for r in reddit[15:]]}),
        folder / "b.parquet",
    )
    result = ingest(
        _config(
            {"path": str(folder), "platform": "Reddit", "columns": {"text": "body", "id": "uid"}}
        )
    )
    assert result.posts.num_rows == 30
    assert set(result.posts["platform"].to_pylist()) == {"reddit"}
    assert result.posts["text"].to_pylist() == [r["text"] for r in reddit]
    assert result.quarantine["reason"].to_pylist()[0].startswith("invalid JSON")
    assert result.summary["reddit"] == {
        "read": 31,
        "kept": 30,
        "quarantined": 1,
        "control_chars_stripped": 0,
        **dict.fromkeys(["accounts", "with_author", "with_timestamp"], 0),
        **dict.fromkeys(["with_reply_to", "with_thread_id", "with_quote_of", "with_lang"], 0),
        "languages": {},
        **dict.fromkeys(["dangling_reply_to", "dangling_quote_of", "self_replies"], 0),
        "reply_loops": 0,
        "self_quotes": 0,
        "quote_loops": 0,
    }


def test_datasets_folders_are_inputs_saved_or_laid_out_as_on_the_hub(tmp_path, demo_rows):
    """A dataset saved with `datasets` (one, or a dict of splits, as Arrow streams) and a folder
    laid out as on the Hub (its card's configs naming the data files) read as any input."""
    import yaml
    from datasets import Dataset, DatasetDict

    rows = first_per_platform(demo_rows, 5)
    columns = {c: [r[c] for r in rows] for c in ("id", "platform", "text", "author")}
    texts = sorted(columns["text"])
    Dataset.from_dict(columns).save_to_disk(str(tmp_path / "saved"))
    half = len(rows) // 2
    DatasetDict(
        {
            "train": Dataset.from_dict({c: v[:half] for c, v in columns.items()}),
            "test": Dataset.from_dict({c: v[half:] for c, v in columns.items()}),
        }
    ).save_to_disk(str(tmp_path / "splits"))
    hub = tmp_path / "hub"
    for name, part in (("posts", slice(None)), ("other", slice(0, 3))):
        (hub / "data" / name).mkdir(parents=True)
        table = pa.table({c: v[part] for c, v in columns.items()})
        pq.write_table(table, hub / "data" / name / "train.parquet")
    (hub / "mpsynth").mkdir()
    pq.write_table(pa.table({"metric": ["x"]}), hub / "mpsynth" / "metrics.parquet")  # not data
    configs = [
        {"config_name": n, "data_files": [{"split": "train", "path": f"data/{n}/*.parquet"}]}
        for n in ("posts", "other")
    ]
    header = {"license": "cc-by-4.0", "configs": configs}
    (hub / "README.md").write_text("---\n" + yaml.safe_dump(header) + "---\n# card\n")
    for path, extra, expected in (
        (tmp_path / "saved", {}, texts),
        (tmp_path / "splits", {}, texts),  # every split
        (hub, {"dataset_config": "posts"}, texts),
        (hub, {"dataset_config": "other"}, sorted(columns["text"][:3])),
    ):
        result = ingest(_config({"path": str(path), **extra}))
        assert sorted(result.posts.column("text").to_pylist()) == expected, path
    with pytest.raises(InputError, match=r"configs posts, other: name one with .*dataset_config"):
        ingest(_config({"path": str(hub)}))
    with pytest.raises(InputError, match=r"no dataset config 'nope'; its configs are posts, other"):
        ingest(_config({"path": str(hub), "dataset_config": "nope"}))
    # the card's licence is the input's, for `mpsynth publish --include-real`
    from mpsynth.config.run import build_config
    from mpsynth.publish.folder import check_real_licences

    inputs = [{"path": str(hub), "dataset_config": "posts"}]
    run = build_config({"run_dir": str(tmp_path / "run"), "ingest": {"inputs": inputs}})
    assert check_real_licences(run) == {str(hub): ["cc-by-4.0"]}


def test_interaction_and_engagement_columns_in_one_vocabulary_and_odd_values_counted(
    tmp_path, caplog
):
    """Kinds as each platform names them become one vocabulary; counts are read as counts (a
    thousands separator, a K suffix); an unknown kind, a negative or fractional count, text:
    nulled, counted and warned about, never a crash or a lost post."""
    rows = [
        ("1", "twitter", "an original", "original", "12", "1,204", ""),
        ("2", "twitter", "RT a repost", "retweet", "0", "3.4K", ""),
        ("3", "twitter", "a quote", "quote_tweet", "-3", "55", ""),
        ("4", "reddit", "a comment", "comment", "", "", "-7"),
        ("5", "reddit", "a submission", "Submission", "2.5", "", "40"),
        ("6", "telegram", "forwarded", "true", "lots", "", ""),
        ("7", "telegram", "a poll", "poll", "", "", ""),
    ]
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,platform,text,post_type,likes,followers,score\n"
        + "".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows)
    )
    columns = {"post_kind": "post_type", "likes": "likes", "followers": "followers",
               "votes": "score"}  # fmt: skip
    with caplog.at_level("WARNING"):
        result = ingest(_config({"path": str(path), "columns": columns}))
    posts = {r["id"]: r for r in result.posts.to_pylist()}
    assert len(posts) == len(rows) and result.quarantine.num_rows == 0  # nothing lost
    kinds = [posts[str(i)]["post_kind"] for i in range(1, 8)]
    assert kinds == ["original", "repost", "quote", "comment", "original", "repost", None]
    assert [posts[str(i)]["likes"] for i in range(1, 8)] == [12, 0, None, None, None, None, None]
    assert [posts[str(i)]["followers"] for i in (1, 2, 3)] == [1204, 3400, 55]
    assert posts["4"]["votes"] == -7 and posts["5"]["votes"] == 40  # net votes may be negative
    twitter, reddit, telegram = (result.summary[p] for p in ("twitter", "reddit", "telegram"))
    assert twitter["kind_repost"] == 1 and twitter["bad_likes"] == 1  # -3
    assert reddit["bad_likes"] == 1 and telegram["bad_likes"] == 1  # 2.5, "lots"
    assert telegram["unknown_kind"] == 1 and telegram["kind_repost"] == 1
    text = caplog.text
    assert "1 post of a kind mpsynth does not know ('poll'" in text
    assert "3 likes values that are no count" in text
    # every column the posts table has is described
    from mpsynth.core.schema import DESCRIPTIONS

    assert all(name in DESCRIPTIONS for name in result.posts.column_names)


def test_malformed_interactions_are_counted_and_every_row_kept(tmp_path, caplog):
    """Unknown kinds, a repost of a post the input lacks, a quote that quotes itself, two reposts
    resharing each other, negative counts: every row is kept or quarantined with a reason, each
    fault is counted, and the structure stage's reading of the real interactions copes."""
    import numpy as np

    from mpsynth.stages.interactions import real_interactions

    rows = [
        ("1", "twitter", "an original", "original", "", "5"),
        ("2", "twitter", "a repost of a lost post", "retweet", "999", "-4"),
        ("3", "twitter", "quotes itself", "quote_tweet", "3", "2"),
        ("4", "twitter", "reshares 5", "retweet", "5", "1"),
        ("5", "twitter", "reshares 4", "retweet", "4", "x"),
        ("6", "twitter", "a story", "story", "1", "7"),
        ("7", "twitter", "", "original", "", "3"),  # no text: quarantined
    ]
    path = tmp_path / "posts.csv"
    path.write_text(
        "id,platform,text,post_type,quoted,likes\n"
        + "".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows)
    )
    columns = {"post_kind": "post_type", "quote_of": "quoted", "likes": "likes"}
    with caplog.at_level("WARNING"):
        result = ingest(_config({"path": str(path), "columns": columns}))
    assert result.posts.num_rows + result.quarantine.num_rows == len(rows)
    assert result.quarantine.num_rows == 1
    posts = {r["id"]: r for r in result.posts.to_pylist()}
    assert posts["2"]["quote_of"] == "999"  # kept, and counted as dangling
    assert posts["3"]["quote_of"] is None  # a self-quote dropped
    assert [posts["4"]["quote_of"], posts["5"]["quote_of"]].count(None) == 1  # the loop broken
    assert posts["6"]["post_kind"] is None and posts["6"]["quote_of"] == "1"
    assert posts["2"]["likes"] is None and posts["5"]["likes"] is None
    summary = result.summary["twitter"]
    assert (summary["dangling_quote_of"], summary["self_quotes"], summary["quote_loops"]) == (
        1,
        1,
        1,
    )
    assert summary["unknown_kind"] == 1 and summary["bad_likes"] == 2
    assert "quoted themselves or closed a loop" in caplog.text
    n = result.posts.num_rows
    found = real_interactions(result.posts, np.zeros(n, dtype=np.int64), np.zeros(n, np.int64))
    assert found.kinds["twitter"]["repost"] == 3 and found.repost_share("twitter") == 3 / 5


def test_a_reddit_permalink_names_the_thread_and_comments_in_it_are_co_replies(tmp_path):
    """MEIU22 gives each comment's permalink, not its parent: mapped as thread_id, the permalink
    is read as its submission's id, and two accounts commenting in one thread within the window
    are a co-reply pair (the toolkit's co-reply, answering the thread's first post)."""
    import numpy as np

    from mpsynth.metrics.networks import Items, Rules, coordination_graphs
    from mpsynth.metrics.structure import Posts

    base = "https://www.reddit.com/r/texas/comments"
    rows = [
        ("xsi1b8", "submission", "alice", f"{base}/xsi1b8/megathread/", "2022-10-01T05:00:00Z"),
        ("iqlb32l", "comment", "bob", f"{base}/xsi1b8/megathread/iqlb32l/", "2022-10-01T05:08:54Z"),
        (
            "iqlb40a",
            "comment",
            "carol",
            f"{base}/xsi1b8/megathread/iqlb40a/",
            "2022-10-01T05:09:20Z",
        ),
        ("iqzz001", "comment", "dave", f"{base}/yy0001/other/iqzz001/", "2022-10-01T05:09:30Z"),
    ]
    path = tmp_path / "reddit.csv"
    path.write_text(
        "id,platform,post_kind,author,url,timestamp,text\n"
        + "".join(f"{i},reddit,{k},{a},{u},{t},words of {a}\n" for i, k, a, u, t in rows)
    )
    result = ingest(_config({"path": str(path), "columns": {"thread_id": "url"}}))
    threads = dict(zip(result.posts["id"].to_pylist(), result.posts["thread_id"].to_pylist(),
                       strict=True))  # fmt: skip
    assert threads == {"xsi1b8": "xsi1b8", "iqlb32l": "xsi1b8", "iqlb40a": "xsi1b8",
                       "iqzz001": "yy0001"}  # fmt: skip
    posts = Posts.of(result.posts)
    items = Items.of(result.posts["text"].to_pylist(), result.posts["platform"].to_pylist())
    graph = coordination_graphs(posts, items, Rules(60))["co_reply"]
    assert sorted(graph.edges()) == [("reddit\x1fbob", "reddit\x1fcarol")]
    assert np.isclose(graph.edges["reddit\x1fbob", "reddit\x1fcarol"]["weight"], 1)
