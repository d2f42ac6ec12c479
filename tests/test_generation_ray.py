"""Generation through Ray actors against the local fake server: several generators in one run,
spend from the server's token counts, replies, unreachable servers. Crash safety (a worker killed,
the driver killed alone or with its whole process group) is test_interruptions' and
test_object_storage's."""

from __future__ import annotations

import os
import re
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.config import load_config
from mpsynth.generation.ledger import read_ledger
from mpsynth.orchestration.pipeline import estimate, run_pipeline
from mpsynth.stages.prompts.guard import Pseudonymiser
from mpsynth.testing import FakeProviderServer
from tests.conftest import (
    DEMO_COLUMNS,
    copy_run,
    first_per_platform,
    slow_fake_openai_generator,
    write_csv,
)

pytestmark = [pytest.mark.slow, pytest.mark.ray]
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


@pytest.fixture(scope="module")
def server():
    with FakeProviderServer(api_key="test-key", latency_s=0.25) as fake:
        yield fake


@pytest.fixture(scope="module")
def data(tmp_path_factory, demo_rows):
    path = tmp_path_factory.mktemp("data") / "posts.csv"
    return write_csv(path, first_per_platform(demo_rows, 80), DEMO_COLUMNS)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_TEST_KEY", "test-key")


def _config(run_dir, data, server):
    raw = {
        "run_dir": str(run_dir),
        "seed": 5,
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"dimensions": 32}},
        "topics": {"min_cluster_size": 8, "n_neighbors": 10},
        "evaluate": {"bootstrap_samples": 20, "embedder": None},  # the run's LSA space
        "generate": {
            "n_posts": 90,
            "flush_every": 1,
            "progress_interval_s": 0.5,
            "prices": {"test-model": PRICE},
            "generators": [
                {"name": "markov", "provider": {"kind": "markov"}},
                slow_fake_openai_generator(server.base_url),
            ],
        },
    }
    path = run_dir.parent / f"{run_dir.name}.yaml"
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def _dataset(run_dir, name):
    return pq.read_table(run_dir / "postprocess" / "synthetic" / f"{name}.parquet").sort_by("id")


def _assert_each_request_once(run_dir):
    requests = pq.read_table(run_dir / "prompts" / "requests.parquet")
    completions = pq.read_table(run_dir / "generate" / "completions.parquet")
    assert sorted(completions["request_id"].to_pylist()) == sorted(
        requests["request_id"].to_pylist()
    )
    assert set(completions["status"].to_pylist()) == {"ok"}
    ledger = read_ledger(run_dir / "ledger" / "fakegpt")
    ok = ledger.filter(pc.equal(ledger["status"], "ok"))["request_id"].to_pylist()
    assert len(ok) == len(set(ok))  # no request succeeded twice in the ledger


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data, server, ray_local):
    """An uninterrupted run, and what the server answered for it."""
    os.environ["MPSYNTH_TEST_KEY"] = "test-key"
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    config = load_config(_config(run_dir, data, server))
    rows = estimate(config)
    before = server.log.usage.copy()
    manifest = run_pipeline(config)
    usage = server.log.usage - before
    return run_dir, manifest, rows, usage


def test_several_generators_write_their_own_datasets(reference):
    run_dir, _, _, _ = reference
    names = sorted(p.stem for p in (run_dir / "postprocess" / "synthetic").glob("*.parquet"))
    sets = ["fakegpt-mptm", "fakegpt-per_platform", "markov-mptm", "markov-per_platform"]
    assert names == sorted([*sets, *(f"{s}-calibrated" for s in sets)])
    for name in names:
        table = _dataset(run_dir, name)
        assert set(table["platform"].to_pylist()) == {"twitter", "reddit", "youtube", "facebook"}
        assert set(table["generator"].to_pylist()) == {name.split("-")[0]}
    _assert_each_request_once(run_dir)
    metrics = pq.read_table(run_dir / "evaluate" / "metrics.parquet")
    # real-subsample: the real posts at the sets' size, the network metrics' baseline;
    # real-holdout: real posts no stage that shapes a set saw, measured as one (the ceiling)
    assert set(metrics["dataset"].to_pylist()) == {
        "real", "real-subsample", "real-holdout", *names,
    }  # fmt: skip


def test_estimate_and_recorded_spend_agree_with_the_server(reference):
    _, manifest, rows, usage = reference
    fakegpt = next(r for r in rows if r["generator"] == "fakegpt")
    assert fakegpt["prompt_tokens"] == usage["prompt_tokens"]  # same counting as the server's
    assert fakegpt["expected_completion_tokens"] == pytest.approx(
        usage["completion_tokens"], rel=0.5
    )
    spend = (usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1e6
    assert manifest["stages"]["generate"]["rows"]["spend_usd"] == pytest.approx(spend, rel=1e-6)


def test_unreachable_base_url_ends_in_one_line_naming_it(tmp_path, data, server, reference, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    path = _config(tmp_path / "run", data, server)
    raw = yaml.safe_load(path.read_text())
    raw["generate"]["generators"] = [
        {
            "name": "nowhere",
            "provider": {
                "kind": "openai",
                "model": "test-model",
                "base_url": url,
                "api_key_env": "MPSYNTH_TEST_KEY",
            },
            "retry": {"base_delay_s": 0.05},
            "circuit_breaker": {"cooldown_s": 2.0},
        }
    ]
    path.write_text(yaml.safe_dump(raw))
    from mpsynth.cli import main

    started = time.monotonic()
    assert main(["generate", str(path)]) == 2
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.match(
        r"error: generator nowhere: the provider failed through \d circuit-breaker", err[0]
    )
    assert f"last error from {url}" in err[0] and "ConnectionRefusedError" in err[0]
    assert elapsed < 60


def test_estimate_needs_no_key(reference, data, server, monkeypatch, capsys):
    run_dir = reference[0]
    monkeypatch.delenv("MPSYNTH_TEST_KEY")
    from mpsynth.cli import main

    assert main(["estimate", str(run_dir.parent / f"{run_dir.name}.yaml")]) == 0
    printed = capsys.readouterr().out
    assert "fakegpt" in printed and "test-model" in printed


def _with_reply_links(path, platforms, share, seed):
    """The real posts with reply links among them on `platforms`: each post after the first ten
    answers an earlier post of its platform with probability `share` (the bundled files carry no
    reply ids, so the test gives the real texts links of its own)."""
    import numpy as np
    import pyarrow as pa

    posts = pq.read_table(path)
    rng = np.random.default_rng(seed)
    platform = posts["platform"].to_pylist()
    ids = posts["id"].to_pylist()
    seen: dict[str, list[str]] = {}
    links = []
    for post_id, name in zip(ids, platform, strict=True):
        earlier = seen.setdefault(name, [])
        answers = name in platforms and len(earlier) >= 10 and rng.random() < share
        links.append(earlier[int(rng.integers(len(earlier)))] if answers else None)
        earlier.append(post_id)
    column = posts.column_names.index("reply_to")
    pq.write_table(posts.set_column(column, "reply_to", pa.array(links, pa.string())), path)
    return dict(zip(ids, links, strict=True))


def test_replies_follow_the_real_share_and_depth_and_show_their_parent(
    reference, tmp_path, data, server
):
    from mpsynth.metrics.structure import post_depths

    run_dir = tmp_path / "run"
    copy_run(reference[0], run_dir, through="postprocess")
    links = _with_reply_links(run_dir / "ingest" / "posts.parquet", {"reddit", "youtube"}, 0.5, 3)
    for part in ("reference", "holdout"):  # the holdout stage's split of those posts, linked alike
        path = run_dir / "holdout" / f"{part}.parquet"
        posts = pq.read_table(path)
        linked = pa.array([links[i] for i in posts["id"].to_pylist()], pa.string())
        pq.write_table(
            posts.set_column(posts.column_names.index("reply_to"), "reply_to", linked), path
        )
    config = load_config(_config(run_dir, data, server))
    run_pipeline(config, until="structure")
    # a hosted generator's prompts show the parent as the privacy guard leaves it
    guard = Pseudonymiser(config.seed, config.prompts.phone_region)

    assert sum(to is not None for to in links.values()) > 40  # the real posts now answer others
    requests = pq.read_table(run_dir / "structure" / "reply_requests.parquet")
    prompt_of = {r["request_id"]: r["messages"][-1]["content"] for r in requests.to_pylist()}
    summary = __import__("json").loads((run_dir / "structure" / "summary.json").read_text())
    for name in ("fakegpt-mptm", "markov-per_platform"):
        table = pq.read_table(run_dir / "structure" / "synthetic" / f"{name}.parquet")
        rows = table.to_pylist()
        by_id = {r["id"]: r for r in rows}
        replies = summary["sets"][name]["replies"]["platforms"]
        assert set(replies) == {"reddit", "youtube"}  # twitter and facebook have no links
        for row in rows:
            if row["platform"] in ("twitter", "facebook"):
                assert row["reply_to"] is None and row["thread_id"] is None
        for platform, counts in replies.items():
            mine = [r for r in rows if r["platform"] == platform]
            answering = [r for r in mine if r["reply_to"] is not None]
            # the planned share is the real one; nearly every slot got an accepted reply
            assert counts["planned"] == min(round(counts["real_share"] * len(mine)), len(mine) - 1)
            assert 0.3 < counts["real_share"] < 0.6
            assert len(answering) == counts["written"] >= 0.8 * counts["planned"]
            for reply in answering:
                parent = by_id[reply["reply_to"]]  # a post of the same set and platform
                assert parent["platform"] == platform
                shown = (
                    guard(parent["text"], platform) if name.startswith("fake") else parent["text"]
                )
                assert shown in prompt_of[reply["request_id"]]  # shown to the writer
                assert reply["request_id"] in prompt_of
                if parent["timestamp"] is not None and reply["timestamp"] is not None:
                    assert reply["timestamp"] >= parent["timestamp"]
        depth, root = post_depths(table["id"].to_pylist(), table["reply_to"].to_pylist())
        assert max(depth.values()) >= 3  # replies to replies, as the real threads have
        assert all(r["thread_id"] == root[r["id"]] for r in rows if r["reply_to"] is not None)
    # the calibrated set took its plain set's replies: nothing was asked twice
    plain = pq.read_table(run_dir / "structure" / "synthetic" / "markov-mptm.parquet")
    calibrated = pq.read_table(
        run_dir / "structure" / "synthetic" / "markov-mptm-calibrated.parquet"
    )
    assert plain["reply_to"].to_pylist() == calibrated["reply_to"].to_pylist()
    assert requests.num_rows == len(set(requests["request_id"].to_pylist()))
    assert summary["sets"]["markov-mptm"]["replies"]["requests"] > 0
    # the evaluation's structure family reads the links: reply share near the real one
    from mpsynth.core import schema
    from mpsynth.metrics.structure import structure_metrics
    from mpsynth.stages.evaluate.structure import read_posts

    sets = {
        schema.REAL: read_posts(run_dir / "ingest" / "posts.parquet", {}),
        "markov-mptm": read_posts(run_dir / "structure" / "synthetic" / "markov-mptm.parquet"),
    }
    share = {
        (r["dataset"], r["platform"]): r["value"]
        for r in structure_metrics(sets, samples=20, confidence=0.95, seed=0)
        if r["metric"] == "reply_share"
    }
    for platform in ("reddit", "youtube"):
        assert abs(share[("markov-mptm", platform)] - share[(schema.REAL, platform)]) < 0.2
    assert share[("markov-mptm", "twitter")] == share[(schema.REAL, "twitter")] == 0


def test_the_stand_in_writes_the_same_posts_in_the_driver_as_on_worker_actors(
    tmp_path, reference, ray_local, monkeypatch
):
    """A few Markov requests run in the driver (fewer than ray.local_rows: starting actors would
    cost more than the work); through worker actors (local_rows 0) the ledger holds the same posts,
    request by request, since each request carries its own seed."""
    from mpsynth.config import GeneratorConfig, RayConfig
    from mpsynth.distributed import generation
    from mpsynth.providers import RealCorpus

    started = []
    actor_class = generation.GenerationWorker

    class Counted:  # GenerationWorker, each worker it starts counted
        @staticmethod
        def options(**options):
            started.append(options["name"])
            return actor_class.options(**options)

    monkeypatch.setattr(generation, "GenerationWorker", Counted)
    run_dir = reference[0]
    requests = pq.read_table(run_dir / "prompts" / "requests.parquet")
    requests = requests.filter(pc.equal(requests["generator"], "markov")).slice(0, 12)
    corpus = RealCorpus(
        posts=run_dir / "ingest" / "posts.parquet", assignments=run_dir / "topics" / "assignments"
    )
    generator = GeneratorConfig(name="markov", provider={"kind": "markov"})
    texts = {}
    for local_rows in (20_000, 0):
        started.clear()
        ledger = tmp_path / f"ledger-{local_rows}"
        counts = generation.run_generator(
            generator, requests, ledger, corpus, None, None, RayConfig(local_rows=local_rows)
        )
        assert bool(started) == (local_rows == 0)  # worker actors only when asked for
        assert counts["ok"] == requests.num_rows
        rows = read_ledger(ledger).to_pylist()
        assert sorted(r["request_id"] for r in rows) == sorted(requests["request_id"].to_pylist())
        texts[local_rows] = {r["request_id"]: r["text"] for r in rows}
    assert texts[20_000] == texts[0]


def _with_kinds(run_dir, platform, seed):
    """The real posts of `platform` with kinds (a fifth reposts, a tenth quotes), followers per
    account and likes per post, heavy-tailed; in ingest's table and the holdout's parts alike
    (the bundled files carry none of these, so the test gives them their own)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    path = run_dir / "ingest" / "posts.parquet"
    posts = pq.read_table(path)
    mine = [p == platform for p in posts["platform"].to_pylist()]
    draw = rng.random(posts.num_rows)
    kind = [
        None if not m else "repost" if d < 0.2 else "quote" if d < 0.3 else "original"
        for m, d in zip(mine, draw, strict=True)
    ]
    followers_of = {a: int(rng.lognormal(6, 2)) for a in set(posts["author"].to_pylist())}
    columns = {
        "post_kind": pa.array(kind, pa.string()),
        "followers": pa.array(
            [
                followers_of[a] if m else None
                for a, m in zip(posts["author"].to_pylist(), mine, strict=True)
            ],
            pa.int64(),
        ),
        "likes": pa.array([int(rng.pareto(1.2) * 3) if m else None for m in mine], pa.int64()),
    }
    by_id = {name: dict(zip(posts["id"].to_pylist(), values.to_pylist(), strict=True))
             for name, values in columns.items()}  # fmt: skip
    for target in (path, run_dir / "holdout" / "reference.parquet",
                   run_dir / "holdout" / "holdout.parquet"):  # fmt: skip
        table = pq.read_table(target)
        for name, values in by_id.items():
            column = pa.array([values[i] for i in table["id"].to_pylist()], columns[name].type)
            position = table.column_names.index(name)
            table = table.set_column(position, name, column)
        pq.write_table(table, target)
    return by_id


def test_quotes_are_asked_once_through_the_ledger_and_reposts_ask_nothing(
    reference, tmp_path, data, server
):
    """On a platform whose real posts are a fifth reposts and a tenth quotes: the synthetic sets
    have the same shares; every quote was one request (the quoted post in its prompt, filed in
    the generator's ledger), every repost none (the original's text and request, another
    account, a later time); run again, the stage asks the server for nothing."""
    import json

    run_dir = tmp_path / "run"
    copy_run(reference[0], run_dir, through="postprocess")
    real = _with_kinds(run_dir, "twitter", seed=4)
    config = load_config(_config(run_dir, data, server))
    estimated = {r["generator"]: r["structure_requests"] for r in estimate(config)}
    before = len(server.log.requests)
    run_pipeline(config, until="structure")
    sent = len(server.log.requests) - before
    guard = Pseudonymiser(config.seed, config.prompts.phone_region)
    requests = pq.read_table(run_dir / "structure" / "reply_requests.parquet")
    prompt_of = {r["request_id"]: r["messages"][-1]["content"] for r in requests.to_pylist()}
    # the demo rows answer nothing: every request of the stage is a quote's, each sent once
    hosted = [r for r in requests.to_pylist() if r["generator"] == "fakegpt"]
    assert sent == len(hosted) > 0
    ledger = read_ledger(run_dir / "ledger" / "fakegpt")
    assert {r["request_id"] for r in hosted} <= set(ledger["request_id"].to_pylist())
    summary = json.loads((run_dir / "structure" / "summary.json").read_text())
    reference = pq.read_table(run_dir / "holdout" / "reference.parquet")
    reference_kinds = [k for k in reference["post_kind"].to_pylist() if k is not None]
    for name in ("fakegpt-mptm", "markov-per_platform"):
        rows = pq.read_table(run_dir / "structure" / "synthetic" / f"{name}.parquet").to_pylist()
        by_id = {r["id"]: r for r in rows}
        twitter = [r for r in rows if r["platform"] == "twitter"]
        kinds = [r["post_kind"] for r in twitter]
        assert all(r["post_kind"] is None for r in rows if r["platform"] != "twitter")
        # a few dozen twitter posts: the counts are the real shares' arithmetic (the reference
        # posts', the holdout left out), rounded
        shares = {k: reference_kinds.count(k) / len(reference_kinds) for k in ("repost", "quote")}
        own = len(twitter) - kinds.count("repost")  # the posts the rounds wrote into
        assert kinds.count("repost") == round(shares["repost"] / (1 - shares["repost"]) * own) > 0
        planned = summary["sets"][name]["quotes"]["platforms"]["twitter"]["planned"]
        assert planned == round(shares["quote"] / (1 - shares["repost"]) * own) > 0
        for kind in ("repost", "quote"):  # so the shares of the set are the real ones
            assert abs(kinds.count(kind) - shares[kind] * len(kinds)) <= 1.5
        quotes = [r for r in twitter if r["post_kind"] == "quote"]
        assert len(quotes) == summary["sets"][name]["quotes"]["platforms"]["twitter"]["written"]
        for quote in quotes:
            quoted = by_id[quote["quote_of"]]
            shown = guard(quoted["text"], "twitter") if name.startswith("fake") else quoted["text"]
            assert shown in prompt_of[quote["request_id"]]  # one request, the quoted post in it
            assert quote.get("reply_to") is None
        for repost in (r for r in twitter if r["post_kind"] == "repost"):
            original = by_id[repost["quote_of"]]
            assert repost["text"] == original["text"]
            assert repost["request_id"] == original["request_id"]  # no request of its own
            assert repost["author"] != original["author"]
            assert repost["timestamp"] >= original["timestamp"]
            assert original["post_kind"] != "repost"
        # engagement: drawn from the real values; followers one number per account
        likes = {v for v in real["likes"].values() if v is not None}
        assert {r["likes"] for r in twitter} <= likes and len({r["likes"] for r in twitter}) > 3
        followers: dict[str, set] = {}
        for r in twitter:
            followers.setdefault(r["author"], set()).add(r["followers"])
        assert all(len(values) == 1 for values in followers.values())
    # the estimate counted the quotes to come: the plain sets' planned slots, near enough (it
    # reads the posts asked for, the plan the posts accepted)
    planned = sum(
        summary["sets"][name]["quotes"]["platforms"]["twitter"]["planned"]
        for name in ("fakegpt-mptm", "fakegpt-per_platform")
    )
    assert abs(estimated["fakegpt"] - planned) <= 0.25 * planned
    # the stage again from scratch: every quote is answered in the ledger, nothing is sent
    before = len(server.log.requests)
    run_pipeline(config, until="structure", force=["structure"])
    assert len(server.log.requests) == before
