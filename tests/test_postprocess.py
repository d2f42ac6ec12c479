from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpsynth.core import schema
from mpsynth.providers.output import OutputFormatError, parse_posts
from mpsynth.stages.postprocess.parse import postprocess
from tests.conftest import ledger_row, read_rows


def test_parse_accepts_object_list_and_fenced_json():
    items = [{"platform": "reddit", "text": "hi"}]
    assert parse_posts(json.dumps({"posts": items})) == items
    assert parse_posts(json.dumps(items)) == items
    assert parse_posts("```json\n" + json.dumps({"posts": items}) + "\n```") == items
    with pytest.raises(OutputFormatError, match="not valid JSON"):
        parse_posts('{"posts": [')
    with pytest.raises(OutputFormatError, match="expected"):
        parse_posts('{"items": 3}')


def _requests(n):
    return pa.Table.from_pylist(
        [
            {
                "request_id": f"req{i:030d}",
                "generator": "markov",
                "pool_id": f"mptm-{i}",
                "strategy": "mptm",
                "topic": 2,
                "target_platforms": ["reddit", "twitter"],
                "posts_per_platform": 1,
                "example_ids": ["a", "b"],
                "messages": [{"role": "user", "content": "x"}],
                "provider": "markov",
                "model": "m",
                "params_json": "{}",
                "seed": i,
            }
            for i in range(n)
        ],
        schema=schema.GENERATION_REQUESTS,
    )


def _completion(i, text, status="ok"):
    return ledger_row(f"req{i:030d}", status, text=text)


def test_posts_keep_provenance_and_every_rejection_has_a_reason():
    good = {
        "posts": [
            {"platform": "Reddit", "text": "first"},
            {"platform": "twitter", "text": "second"},
        ]
    }
    completions = pa.Table.from_pylist(
        [
            _completion(0, json.dumps(good)),
            _completion(
                1,
                json.dumps(
                    {
                        "posts": [
                            {"platform": "youtube", "text": "x"},
                            {"platform": "reddit", "text": "first"},
                            {"platform": "twitter", "text": " "},
                        ]
                    }
                ),
            ),
            _completion(2, "not json"),
            _completion(3, None, status="failed"),
        ],
        schema=schema.COMPLETIONS,
    )
    result = postprocess(_requests(5), completions)
    posts = result.datasets["markov-mptm"].to_pylist()
    assert [(p["platform"], p["text"]) for p in posts] == [
        ("reddit", "first"),
        ("twitter", "second"),
    ]
    assert posts[0]["request_id"] == f"req{0:030d}" and posts[0]["example_ids"] == ["a", "b"]
    assert posts[0]["topic"] == 2 and posts[0]["seed"] == 0 and posts[0]["provider"] == "markov"
    reasons = result.rejected["reason"].to_pylist()
    assert reasons[0] == "platform not requested: 'youtube'"
    assert reasons[1] == "duplicate text"
    assert reasons[2] == "empty text"
    assert reasons[3].startswith("unparseable output: not valid JSON")
    assert reasons[4] == "request failed: boom"
    assert reasons[5] == "no completion"


def test_labelled_sets_are_calibrated_class_by_class_against_the_seed_posts_of_each_class(tmp_path):
    """Spam carries links and ham rarely: a set whose posts lost every link gets each class's own
    share back, from the seed posts of that class alone."""
    import numpy as np
    import pyarrow as pa

    from mpsynth.labelled.postprocess import calibrate_by_class
    from mpsynth.stages.postprocess.calibrate import spans

    rows = read_rows("youtube_spam.csv")
    seed, rest = rows[:800], rows[800:]
    labels = pa.table(
        {
            "id": [r["id"] for r in seed],
            "label": [r["label"] for r in seed],
            "split": ["seed"] * len(seed),
        }
    )
    posts = pa.table({k: [r[k] for r in seed] for k in ("id", "platform", "text")})

    def share(texts, kind="urls"):
        return np.mean([bool(spans(t, "youtube", kind)) for t in texts])

    real = {c: share([r["text"] for r in seed if r["label"] == c]) for c in ("spam", "ham")}
    assert real["spam"] > real["ham"] + 0.1
    stripped = [
        " ".join(w for w in r["text"].split() if "http" not in w and ".com" not in w) for r in rest
    ]
    table = pa.table(
        {
            "id": [f"s{i}" for i in range(len(rest))],
            "platform": ["youtube"] * len(rest),
            "text": stripped,
            "label": [r["label"] for r in rest],
        }
    )
    sets, shares = calibrate_by_class(
        {"markov-naive": table}, (labels, {}, posts, None), 3, tmp_path / "calibration"
    )
    calibrated = sets["markov-naive-calibrated"]
    assert sets["markov-naive"] is table and calibrated["id"].to_pylist() == table["id"].to_pylist()
    for label in ("spam", "ham"):
        mine = [
            t
            for t, c in zip(
                calibrated["text"].to_pylist(), calibrated["label"].to_pylist(), strict=True
            )
            if c == label
        ]
        assert abs(share(mine) - real[label]) < 0.03, label
        assert shares["markov-naive"][label]["youtube"]["urls"]["real"] == pytest.approx(
            real[label], abs=1e-9
        )
    changes = pq.read_table(tmp_path / "calibration" / "markov-naive.parquet")
    assert "added" in changes["action"].to_pylist()
