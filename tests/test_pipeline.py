"""End to end on real posts: the whole pipeline through a local Ray session, the CLI, re-runs."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.cli import main
from mpsynth.config import load_config
from mpsynth.config.run import PIPELINES
from mpsynth.orchestration.pipeline import run_pipeline
from tests.conftest import DEMO_COLUMNS, first_per_platform, logged_lines, write_csv

# the shared run goes through Ray Data actors with MiniLM on the CPU: minutes beside a second worker
pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(900)]


def _write_config(tmp_path, data, **overrides):
    raw = {
        "run_dir": str(tmp_path / "run"),
        "seed": 3,
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"dimensions": 48}},
        "topics": {"min_cluster_size": 8, "n_neighbors": 10},
        "generate": {"n_posts": 120, "replicates": 2},  # a second generation beside the first
        "evaluate": {"bootstrap_samples": 50},
        # the passes over 500 rows or more through Ray Data actors (embed, topic assignment, and
        # the evaluation's lexical, similarity, entity and sentiment passes), the smaller ones and
        # the Markov chain's requests in the driver: both routes in one run
        "ray": {"local_rows": 500},
    }
    raw.update(overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_rows, ray_local):
    tmp_path = tmp_path_factory.mktemp("e2e")
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 150), DEMO_COLUMNS)
    config_path = _write_config(tmp_path, data)
    # mpsynth's own lines (what the console shows), kept beside the run directory
    with logged_lines("mpsynth") as lines:
        manifest = run_pipeline(load_config(config_path))
    (tmp_path / "console.log").write_text("\n".join(lines))
    return config_path, load_config(config_path), manifest


def test_every_platform_gets_synthetic_posts_with_provenance(finished_run):
    _, config, manifest = finished_run
    synthetic = config.run_dir / "postprocess" / "synthetic"
    names = sorted(p.stem for p in synthetic.glob("*.parquet"))
    assert names == [
        "markov-mptm",
        "markov-mptm-calibrated",
        "markov-per_platform",
        "markov-per_platform-calibrated",
    ]
    summary = json.loads((config.run_dir / "postprocess" / "summary.json").read_text())
    for name in names:
        table = pq.read_table(synthetic / f"{name}.parquet")
        assert set(table["platform"].to_pylist()) == {"twitter", "reddit", "youtube", "facebook"}
        # n_posts 120 wanted; deficit rounds refill what the copy filter drops
        composition = summary["composition"][name.removesuffix("-calibrated")]
        assert composition["target"] == 120
        assert table.num_rows == composition["accepted"] == 120 - composition["shortfall"] >= 100
        assert all(1 <= len(ids) <= 9 for ids in table["example_ids"].to_pylist())
    assert list(manifest["stages"]) == list(PIPELINES["mptm"])
    assert manifest["stages"]["ingest"]["rows"] == {"posts": 600, "quarantined": 0}


def test_the_holdout_reaches_nothing_that_shapes_a_synthetic_set_and_is_measured_as_one(
    finished_run,
):
    """A stratified holdout, as large per platform as a synthetic set: no pool shows one of its
    posts, no prompt holds its text, and no word found only in held-out posts (a natural canary)
    reaches a request, a synthetic or calibrated post, or the reply and structure inputs; the
    evaluation measures it beside the synthetic sets, and tests every set's distance to the
    closest record against it."""
    _, config, manifest = finished_run
    run = config.run_dir
    held = pq.read_table(run / "holdout" / "holdout.parquet")
    reference = pq.read_table(run / "holdout" / "reference.parquet")
    assert Counter(held["platform"].to_pylist()) == dict.fromkeys(
        ["facebook", "reddit", "twitter", "youtube"], 30
    )  # n_posts 120 over four equal platforms, under 20% of 150
    assert held.num_rows + reference.num_rows == manifest["stages"]["ingest"]["rows"]["posts"]
    held_ids = set(held["id"].to_pylist())
    pools = pq.read_table(run / "pools" / "pools.parquet")
    assert not held_ids & {i for ids in pools["example_ids"].to_pylist() for i in ids}

    def words(texts):
        return {w for t in texts for w in re.findall(r"[a-z]{6,}", t.lower())}

    canaries = words(held["text"].to_pylist()) - words(reference["text"].to_pylist())
    assert len(canaries) > 50
    requests = pq.read_table(run / "prompts" / "requests.parquet")
    sent = json.dumps(requests["messages"].to_pylist()).lower()
    written = [
        t
        for folder in ("postprocess/synthetic", "structure/synthetic")
        for path in sorted((run / folder).glob("*.parquet"))
        for t in pq.read_table(path, columns=["text"])["text"].to_pylist()
    ]
    assert written and not canaries & words(written)
    assert not [c for c in canaries if re.search(rf"\b{c}\b", sent)]
    metrics = pq.read_table(run / "evaluate" / "metrics.parquet").to_pylist()
    families = {r["family"] for r in metrics if r["dataset"] == "real-holdout"}
    assert {"lexical", "similarity", "sentiment", "detectability", "privacy"} <= families
    dcr = [r for r in metrics if r["metric"] == "dcr_nearer_reference_share"]
    assert {r["dataset"] for r in dcr} == {
        "markov-mptm", "markov-mptm-calibrated", "markov-per_platform",
        "markov-per_platform-calibrated",
    }  # fmt: skip
    assert all(0 <= r["ci_low"] <= r["value"] <= r["ci_high"] <= 1 for r in dcr)


def test_the_shared_run_took_ray_data_actors_and_the_driver_by_size(finished_run):
    _, config, manifest = finished_run
    log = (config.run_dir.parent / "console.log").read_text()
    for name in (
        "embed",
        "topics: assigning posts",
        "evaluate: lexical features",
        "evaluate: similarity space",
        "evaluate: entities",
        "evaluate: sentiment",
    ):
        assert re.search(rf"{name}: \d actor\(s\)", log), name
    # no actor without a full batch: the evaluation's ~1,000 posts are one batch of lexical
    # features (8,192 rows a batch), and of sentiment (1,024 a batch) as many as there are, up
    # to the shared session's 2 CPUs
    posts = manifest["stages"]["evaluate"]["rows"]["posts"]
    assert "evaluate: lexical features: 1 actor(s)" in log
    assert f"evaluate: sentiment: {min(2, math.ceil(posts / 1024))} actor(s)" in log
    assert re.search(r"evaluate: embed: \d+ rows in this process", log)  # the new texts only
    assert re.search(r"generate markov: \d+ requests in this process", log)


def test_mptm_pools_from_the_fitted_topics_share_one_topic(finished_run):
    _, config, _ = finished_run
    assignments = pq.read_table(config.run_dir / "topics" / "assignments")
    topic_of = dict(
        zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
    )
    pools = pq.read_table(config.run_dir / "pools" / "pools.parquet").to_pylist()
    mptm = [p for p in pools if p["strategy"] == "mptm"]
    assert mptm
    reference = pq.read_table(config.run_dir / "holdout" / "reference.parquet", columns=["id"])
    held = Counter(topic_of[i] for i in reference["id"].to_pylist())  # posts a topic can show
    for pool in mptm:
        assert {topic_of[i] for i in pool["example_ids"]} == {pool["topic"]}
        assert len(pool["example_ids"]) == min(9, held[pool["topic"]])


def test_metrics_and_a_self_contained_report(finished_run):
    _, config, _ = finished_run
    metrics = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet").to_pylist()
    real_share = {
        m["platform"]: m["value"]
        for m in metrics
        if m["dataset"] == "real" and m["metric"] == "share_with_urls"
    }
    # the first 150 IRA tweets of the demo data: URLs in most, as in the whole file
    assert real_share["twitter"] > 0.4 and real_share["reddit"] < 0.05
    assert json.loads((config.run_dir / "evaluate" / "metrics.json").read_text())
    families = {m["family"] for m in metrics}
    assert families == {
        "lexical",
        "sentiment",
        "similarity",
        "linguistic",
        "topics",
        "detectability",
        "privacy",
        "by_topic",
        "structure",
        "network",
        "entities",  # en_core_web_sm, installed with mpsynth, on by default
    }
    synthetic = {m["dataset"] for m in metrics} - {"real", "real-subsample"}
    for dataset in synthetic:  # every comparison is there, for every platform and overall
        compared = {(m["metric"], m["platform"]) for m in metrics if m["dataset"] == dataset}
        for platform in ("twitter", "reddit", "youtube", "facebook", "all"):
            assert ("detectability_auc", platform) in compared
            assert ("synthetic_with_real_counterpart@0.7", platform) in compared
            if dataset != "real-holdout":  # its posts were shown no examples
                assert ("near_copy_of_examples_share", platform) in compared
    for m in metrics:  # headline comparisons carry an interval around their value
        if m["platform"] == "all" and m["metric"] in (
            "detectability_auc",
            "sentiment_js_divergence",
            "synthetic_with_real_counterpart@0.7",
        ):
            assert m["ci_low"] <= m["value"] <= m["ci_high"], m
    by_topic = [m for m in metrics if m["family"] == "by_topic"]
    assert by_topic and all(m["topic"] is not None and m["topic"] >= 0 for m in by_topic)
    assert {m["dataset"] for m in by_topic} == {"real", *synthetic}
    # a topic is named by its keywords wherever it is shown: the table and the report's heatmap
    topics = pq.read_table(config.run_dir / "topics" / "topics.parquet").to_pylist()
    keywords = {t["topic"]: t["keywords"] for t in topics}
    for m in by_topic:
        number, _, words = m["topic_name"].partition(": ")
        assert int(number) == m["topic"] and words.split(", ") == keywords[m["topic"]][:4]
    assert all(m["topic_name"] is None for m in metrics if m["topic"] is None)
    page = (config.run_dir / "report" / "report.html").read_text()
    assert by_topic[0]["topic_name"] in page and 'class="heat"' in page
    # lexical, length, sentiment, similarity, map; structure curves, cross-platform graphs
    assert len(re.findall(r'<img alt="plot" src="data:image/png;base64,', page)) == 7
    # the page opens with the verdict: every metric beside the holdout's, and the sentence on
    # cross-platform interconnection
    assert page.index("<h2>Verdict") < page.index("<h2>Posts per platform")
    assert "ceiling (real-holdout)" in page
    # answered from the graphs' intervals (over both generations), not left open
    assert re.search(
        r"MPTM gives (more|less) cross-platform interconnection|no difference in cross-platform "
        r"interconnection is detectable at this size: .* \(means over 2 generations\)",
        page,
    )
    card = (config.run_dir / "report" / "dataset_card.md").read_text()
    assert "| metric | ceiling (real-holdout) | markov-mptm |" in card
    assert "| markov-mptm | markov | markov / ngram-markov | mptm |" in card
    assert "| detectability_auc |" in card and "| near_copy_of_examples_share |" in card
    assert not re.search(r'(src|href)="(https?:)?//', page)


def _copy_of(finished_run, tmp_path):
    """The finished run copied elsewhere, and its config pointing there: a test that changes a run
    changes its own copy, and the shared run stays as it finished."""
    config_path, config, _ = finished_run
    shutil.copytree(config.run_dir, tmp_path / "run")
    raw = yaml.safe_load(config_path.read_text())
    copy = tmp_path / "config.yaml"
    copy.write_text(yaml.safe_dump({**raw, "run_dir": str(tmp_path / "run")}))
    return copy


def test_a_second_generation_shares_every_stage_before_pools_and_draws_anew_after(finished_run):
    _, config, manifest = finished_run
    root = config.run_dir
    second = root / "generations" / "2"
    theirs = json.loads((second / "manifest.json").read_text())["stages"]
    assert list(theirs) == list(PIPELINES["mptm"])[: PIPELINES["mptm"].index("evaluate") + 1]
    for stage in ("ingest", "embed", "topics", "holdout"):  # hard-linked, never recomputed
        assert theirs[stage]["reused_from"] == str(root / stage)
        assert theirs[stage]["fingerprint"] == manifest["stages"][stage]["fingerprint"]
        file = next(p for p in (root / stage).rglob("*") if p.is_file())
        assert (second / stage / file.relative_to(root / stage)).stat().st_ino == file.stat().st_ino
    for stage in ("pools", "prompts", "generate", "postprocess", "structure", "evaluate"):
        assert "reused_from" not in theirs[stage]
    seeds = [
        set(pq.read_table(r / "pools" / "pools.parquet", columns=["seed"])["seed"].to_pylist())
        for r in (root, second)
    ]
    assert not seeds[0] & seeds[1]  # new draws
    assert yaml.safe_load((second / "config.yaml").read_text())["generate"]["replicate"] == 1
    # every metric of both generations, and each one's spread over them
    every = pq.read_table(root / "replicates" / "metrics.parquet")
    assert sorted(set(every["replicate"].to_pylist())) == [1, 2]
    spread = {
        (r["metric"], r["dataset"]): r
        for r in pq.read_table(root / "replicates" / "spread.parquet").to_pylist()
        if r["platform"] == "all"
    }
    synthetic = spread[("detectability_auc", "markov-mptm")]
    assert synthetic["replicates"] == 2 and synthetic["sd"] > 0
    assert synthetic["mean_low"] < synthetic["mean"] < synthetic["mean_high"]
    assert spread[("mean_chars", "real-holdout")]["sd"] == 0  # one holdout, measured alike
    page = (root / "report" / "report.html").read_text()
    assert "mean over 2 independent generations" in page
    card = (root / "report" / "dataset_card.md").read_text()
    assert "mean ± standard deviation over 2" in card


def test_every_structure_and_network_value_of_a_set_carries_an_interval(finished_run):
    _, config, _ = finished_run
    rows = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet").to_pylist()
    structure = [
        r for r in rows if r["family"] in ("structure", "network") and r["value"] is not None
    ]
    sets = [r for r in structure if r["dataset"] not in ("real", "real-subsample")]
    with_interval = [r for r in sets if r["ci_low"] is not None]
    # the graphs rebuilt on resampled posts, the counts bootstrapped over posts or accounts
    edge_share = [r for r in sets if r["metric"] == "cross_platform_cross_platform_edge_share"]
    assert edge_share and all(r["ci_low"] is not None for r in edge_share)
    assert len(with_interval) / len(sets) > 0.95
    # centred intervals hold their value (a percentile bootstrap of a divergence need not: a
    # resample's duplicates move the statistic itself)
    centred = ("accounts", "posts_per_account", "reply_share", "thread_depth", "burstiness")
    for r in with_interval:
        if r["family"] == "network" or r["metric"] in centred:
            assert r["ci_low"] - 1e-9 <= r["value"] <= r["ci_high"] + 1e-9, r
    # the text measures, with the holdout measured alike (MAUVE needs 500 posts a side, more
    # than this run's sets hold: tests/test_metric_families.py measures it)
    assert not [r for r in rows if r["metric"] == "mauve"]
    for metric in ("distinct_3", "compression_ratio"):
        measured = {r["dataset"] for r in rows if r["metric"] == metric}
        assert {"real-holdout", "markov-mptm"} <= measured, metric
    # what the structure stage copies from the real accounts is marked in the table and the page
    copied = {(r["dataset"], r["metric"]) for r in rows if r["by_construction"]}
    assert ("markov-mptm", "posts_per_account_ks") in copied
    assert not {d for d, _ in copied} & {"real", "real-holdout"}
    assert ("markov-mptm", "inter_post_time_ks") not in copied
    page = (config.run_dir / "report" / "report.html").read_text()
    assert "posts_per_account_ks <span class='muted'>(by construction: no evidence)" in page
    # accounts read by their style need three posts each: the small holdout has too few
    assert {"real", "markov-mptm"} <= {
        r["dataset"] for r in rows if r["metric"] == "account_style_heterogeneity"
    }


def test_rerun_skips_current_stages_and_a_change_reruns_from_where_it_bites(finished_run, tmp_path):
    first = finished_run[2]
    config_path = _copy_of(finished_run, tmp_path)
    again = run_pipeline(load_config(config_path))
    assert again["stages"] == first["stages"]
    # n_posts bites at pools; the evaluation, rerun anyway, measures in the run's own space and
    # every pass runs in the driver (the shared run went through MiniLM and Ray Data actors)
    changed = run_pipeline(
        load_config(
            config_path,
            [
                "generate.n_posts=60",
                "generate.replicates=1",
                "evaluate.embedder=null",
                "ray.local_rows=20000",
            ],
        )
    )
    for stage in ("ingest", "embed", "topics"):
        assert changed["stages"][stage] == first["stages"][stage]
    for stage in ("pools", "prompts", "generate", "postprocess", "structure", "evaluate", "report"):
        assert changed["stages"][stage]["finished"] >= first["stages"][stage]["finished"]
        assert changed["stages"][stage]["fingerprint"] != first["stages"][stage]["fingerprint"]
    assert changed["stages"]["pools"]["rows"]["pools"] < first["stages"]["pools"]["rows"]["pools"]


def test_cli_missing_text_column_fails_before_writing_anything(tmp_path, demo_rows, capsys):
    data = write_csv(tmp_path / "no_text.csv", demo_rows[:20], ["platform", "id", "author"])
    config_path = _write_config(tmp_path, data)
    assert main(["run", str(config_path)]) == 2
    err = capsys.readouterr().err
    assert "no column 'text'" in err and str(data) in err
    assert not (tmp_path / "run").exists()


def test_cli_invalid_override_names_the_key(tmp_path, demo_rows, capsys):
    data = write_csv(tmp_path / "p.csv", demo_rows[:20], DEMO_COLUMNS)
    config_path = _write_config(tmp_path, data)
    assert main(["run", str(config_path), "--set", "topics.min_cluster_size=1"]) == 2
    assert "topics.min_cluster_size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_stage_subcommand_runs_up_to_that_stage(tmp_path, demo_rows, ray_local):
    data = write_csv(tmp_path / "p.csv", first_per_platform(demo_rows, 60), DEMO_COLUMNS)
    config_path = _write_config(tmp_path, data)
    assert main(["embed", str(config_path)]) == 0
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert list(manifest["stages"]) == ["ingest", "embed"]
    # every post embedded, each of the 240 distinct texts encoded (the LSA space is this run's own)
    assert manifest["stages"]["embed"]["rows"] == {
        "embeddings": 240,
        "texts_encoded": 240,
        "texts_cached": 0,
        "texts_repeated": 0,
    }
    embedded = pq.read_table(tmp_path / "run" / "embed" / "embeddings")
    kind = embedded.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.list_size == 48
    assert kind.value_type == pa.float32()


def test_report_renders_in_a_headless_browser(finished_run, tmp_path):
    """The report is self-contained: opened from disk with the network off, its plots paint."""
    import asyncio

    from matplotlib.image import imread

    from mpsynth.testing.browser import Page, require_chromium

    require_chromium("report")
    _, config, _ = finished_run
    report = config.run_dir / "report" / "report.html"
    shot = tmp_path / "report.png"

    async def take() -> None:  # the verdict table first, the plots below it
        async with Page(tmp_path / "profile", width=1200, height=5000) as page:
            await page.goto(report.as_uri())
            await page.screenshot(shot)

    asyncio.run(take())
    image = imread(shot)
    assert image.shape[:2] == (5000, 1200)
    colour = image[..., :3].max(axis=2) - image[..., :3].min(axis=2)
    # the coloured bars and lines of the plots are on screen: over 86,000 coloured pixels (the
    # verdict's red and green figures above them give some 40,000, the whole page some 120,000)
    assert (colour > 0.3).sum() > 0.03 * 2400 * 1200


def test_a_relative_run_directory_works_end_to_end(tmp_path, demo_rows, ray_local, monkeypatch):
    """Paths in the config are relative to where mpsynth runs, as in configs/demo.yaml."""
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 60), DEMO_COLUMNS)
    config = {
        "run_dir": "runs/relative",
        "seed": 3,
        "ingest": {"inputs": [{"path": "posts.csv"}]},
        "embed": {"embedder": {"dimensions": 32}},
        "topics": {"min_cluster_size": 6, "n_neighbors": 8},
        "generate": {"n_posts": 40},
        "evaluate": {"bootstrap_samples": 10, "embedder": None},
    }
    (tmp_path / "relative.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", "relative.yaml"]) == 0
    assert (tmp_path / "runs" / "relative" / "report" / "report.html").is_file()


def test_synthetic_sets_get_accounts_and_times_where_the_real_input_has_them(finished_run):
    """The demo's tweets and YouTube comments carry authors and times, its Reddit and Facebook
    posts neither: the synthetic sets follow, and the structure and network metrics measure it."""
    _, config, _ = finished_run
    personas = pq.read_table(config.run_dir / "structure" / "personas.parquet")
    per_persona = Counter(
        zip(personas["platform"].to_pylist(), personas["persona"].to_pylist(), strict=True)
    )
    assert min(per_persona.values()) >= config.structure.persona_min_accounts
    for path in sorted((config.run_dir / "structure" / "synthetic").glob("*.parquet")):
        table = pq.read_table(path)
        plain = pq.read_table(config.run_dir / "postprocess" / "synthetic" / path.name)
        assert table.select(plain.column_names).equals(plain)  # the posts themselves unchanged
        for platform in ("twitter", "youtube", "reddit", "facebook"):
            mine = table.filter(pc.equal(table["platform"], platform))
            carried = platform in ("twitter", "youtube")
            assert (mine["author"].null_count == 0) == carried, (path.stem, platform)
            assert (mine["timestamp"].null_count == 0) == carried, (path.stem, platform)
    metrics = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet").to_pylist()
    measured = {(m["dataset"], m["platform"], m["metric"]) for m in metrics}
    for name in ("markov-mptm", "markov-per_platform"):
        for platform in ("twitter", "youtube", "all"):
            assert (name, platform, "posts_per_account_ks") in measured
            assert (name, platform, "hour_of_day_js") in measured
        assert (name, "reddit", "posts_per_account_ks") not in measured  # nothing to compare
        assert (name, "all", "cross_platform_cross_platform_edge_share") in measured
        assert (name, "twitter", "co_url_edges") in measured
    assert ("real", "all", "hashtags_modularity") in measured
    # the network baseline: the real posts drawn down to the sets' size, in no other family
    assert ("real-subsample", "all", "cross_platform_nodes") in measured
    assert {m["family"] for m in metrics if m["dataset"] == "real-subsample"} == {"network"}
    page = (config.run_dir / "report" / "report.html").read_text()
    assert "<h2>Structure and networks</h2>" in page
    assert "One synthetic account beside its persona" in page


def test_every_output_table_describes_its_columns(finished_run):
    _, config, _ = finished_run
    tables = sorted(config.run_dir.rglob("*.parquet"))
    assert len(tables) >= 15
    for path in tables:
        for field in pq.read_schema(path):
            if field.name == "path":
                continue  # Ray Data's own column on rows read with include_paths
            assert (field.metadata or {}).get(b"description"), f"{path}: {field.name}"


def test_metrics_are_strict_json_and_missing_values_are_null(finished_run):
    _, config, _ = finished_run
    text = (config.run_dir / "evaluate" / "metrics.json").read_text()
    rows = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    table = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet")
    for name in ("value", "ci_low", "ci_high"):
        assert not pc.any(pc.is_nan(table[name])).as_py()
    assert table["ci_low"].null_count > 0  # metrics without an interval say so with null
    assert sum(row["ci_low"] is None for row in rows) == table["ci_low"].null_count


def test_the_same_config_and_seed_give_identical_metrics_with_and_without_the_cache(
    finished_run, tmp_path
):
    """The evaluation again, every text encoded afresh (embed.cache=false): the same metrics as the
    run that took the real posts' vectors from the embedding cache."""
    _, config, manifest = finished_run
    first = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet")
    assert manifest["stages"]["evaluate"]["rows"]["texts_cached"] > 0  # the cache was used
    config_path = _copy_of(finished_run, tmp_path)
    # in the driver (ray.local_rows is no input): the shared run went through Ray Data actors
    again = run_pipeline(
        load_config(config_path, ["embed.cache=false", "ray.local_rows=20000"]),
        until="evaluate",
        force={"evaluate"},
    )
    assert again["stages"]["evaluate"]["rows"]["texts_cached"] == 0
    assert again["stages"]["embed"] == manifest["stages"]["embed"]  # the switch is no new input
    second = pq.read_table(tmp_path / "run" / "evaluate" / "metrics.parquet")
    assert first.num_rows == second.num_rows
    numbers = ("value", "ci_low", "ci_high")
    rest = [c for c in first.column_names if c not in numbers]
    assert first.select(rest).equals(second.select(rest))
    # values and intervals alike, up to the last bits of MiniLM's CPU arithmetic (a diversity
    # differed in its 9th decimal between two runs)
    for column in numbers:
        a = first[column].to_numpy(zero_copy_only=False).astype(float)
        b = second[column].to_numpy(zero_copy_only=False).astype(float)
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9, equal_nan=True)


def test_ray_usage_statistics_are_off_unless_asked_for(ray_local):
    from ray._common.usage import usage_lib

    assert not usage_lib.usage_stats_enabled()


def test_the_copy_filter_leaves_no_copies_and_accounts_for_every_post(finished_run):
    _, config, _ = finished_run
    summary = json.loads((config.run_dir / "postprocess" / "summary.json").read_text())
    copies = summary["copies"]
    rejected = pq.read_table(config.run_dir / "postprocess" / "rejected.parquet").to_pylist()
    filtered = [r for r in rejected if r["reason"].startswith("copy filter")]
    assert set(copies) == {"markov-mptm", "markov-per_platform"}
    for counts in copies.values():  # over every round
        dropped = counts["before"] - counts["kept"]
        assert dropped == sum(v for k, v in counts.items() if k not in ("before", "kept"))
    # the offline chain replays real posts: something was dropped, each with its reason
    assert len(filtered) == sum(c["before"] - c["kept"] for c in copies.values()) > 0
    metrics = pq.read_table(config.run_dir / "evaluate" / "metrics.parquet").to_pylist()
    exact = [m["value"] for m in metrics if m["metric"] == "exact_copy_share"]
    assert exact and all(v == 0 for v in exact)
    page = (config.run_dir / "report" / "report.html").read_text()
    assert "<h2>Copy filter</h2>" in page and "near duplicate" in page
    card = (config.run_dir / "report" / "dataset_card.md").read_text()
    assert "Copy filter: on (exact copies, near copies of examples" in card
    assert "Privacy guard: not used" in card  # the offline generator is local


def test_composition_follows_the_real_cells_with_deficit_rounds(finished_run):
    _, config, _ = finished_run
    run = config.run_dir
    targets = pq.read_table(run / "pools" / "targets.parquet").to_pylist()
    summary = json.loads((run / "postprocess" / "summary.json").read_text())["composition"]
    for name, strategy in (("markov-mptm", "mptm"), ("markov-per_platform", "per_platform")):
        wanted = {
            (t["topic"], t["platform"]): t["target"] for t in targets if t["strategy"] == strategy
        }
        assert sum(wanted.values()) == 120
        table = pq.read_table(run / "postprocess" / "synthetic" / f"{name}.parquet")
        topics = table["topic"].to_pylist() if strategy == "mptm" else [None] * table.num_rows
        held = Counter(zip(topics, table["platform"].to_pylist(), strict=True))
        assert all(held[cell] <= n for cell, n in wanted.items())  # never beyond a target
        assert set(held) <= set(wanted)
        report = summary[name]
        lacking = sum(max(0, n - held[cell]) for cell, n in wanted.items())
        assert report["shortfall"] == lacking
        assert report["accepted"] >= report["accepted_first_round"] - report["surplus_trimmed"]
        assert report["js"] <= report["js_first_round"] + 1e-9
    # the copy filter left the first round short, so a deficit round ran and asked for more
    mptm = summary["markov-mptm"]
    assert mptm["rounds"] >= 1 and mptm["requests_added"] > 0
    rejected = pq.read_table(run / "postprocess" / "rejected.parquet")["reason"].to_pylist()
    trimmed = sum(r.startswith("composition:") for r in rejected)
    assert trimmed == sum(r["surplus_trimmed"] for r in summary.values())
    page = (run / "report" / "report.html").read_text()
    assert "<h2>Composition</h2>" in page and "deficit rounds" in page
    card = (run / "report" / "dataset_card.md").read_text()
    assert "Composition: on (platform shares: real" in card
    assert f"| markov-mptm | 120 | {mptm['accepted']} | {mptm['rounds']} |" in card


def test_calibrated_sets_hold_the_real_shares_and_record_every_change(finished_run):
    _, config, _ = finished_run
    run = config.run_dir
    calibration = json.loads((run / "postprocess" / "summary.json").read_text())["calibration"]
    metrics = pq.read_table(run / "evaluate" / "metrics.parquet").to_pylist()
    share = {
        (m["dataset"], m["platform"], m["metric"]): (m["value"], m["n"])
        for m in metrics
        if m["family"] == "lexical" and m["metric"].startswith("share_with_")
    }
    for name in ("markov-mptm", "markov-per_platform"):
        changes = pq.read_table(run / "postprocess" / "calibration" / f"{name}.parquet")
        plain = pq.read_table(run / "postprocess" / "synthetic" / f"{name}.parquet")
        calibrated = pq.read_table(run / "postprocess" / "synthetic" / f"{name}-calibrated.parquet")
        assert plain["id"].equals(calibrated["id"])  # the same posts, some texts changed
        differ = {
            i
            for i, a, b in zip(
                plain["id"].to_pylist(),
                plain["text"].to_pylist(),
                calibrated["text"].to_pylist(),
                strict=True,
            )
            if a != b
        }
        assert differ == set(changes["id"].to_pylist())
        for platform, kinds in calibration[name].items():
            for kind, shares in kinds.items():
                # the evaluation measures what calibration aimed at, on every post of the set
                value, n = share[(f"{name}-calibrated", platform, f"share_with_{kind}")]
                assert value == pytest.approx(shares["after"])
                real, _ = share[("real", platform, f"share_with_{kind}")]
                assert abs(value - shares["real"]) <= 1 / n + 1e-9
                assert abs(shares["real"] - real) < 0.1  # the evaluation's real sample


def test_publish_writes_a_hub_dataset_that_loads_and_uploads(finished_run, tmp_path, monkeypatch):
    """`mpsynth publish`: each set a config `datasets` loads, the card under the Hub's header,
    Croissant metadata mlcroissant validates and reads, and the folder committed to a Hub (the
    real huggingface_hub client against a local one) with the token from the environment."""
    import itertools

    import huggingface_hub.constants
    import mlcroissant as mlc
    from datasets import get_dataset_config_names, load_dataset

    from mpsynth.publish.folder import publish_folder
    from mpsynth.publish.hub import upload
    from mpsynth.testing.hub import FakeHub

    _, config, manifest = finished_run
    out = tmp_path / "published"
    summary = publish_folder(config.run_dir, out)
    sets = {
        p.stem: pq.read_table(p).num_rows
        for p in (config.run_dir / "structure" / "synthetic").glob("*.parquet")
    }
    assert summary["sets"] == sets
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert sorted(c["config_name"] for c in header["configs"]) == sorted(sets)
    assert header["license"] == "other" and sum(sets.values()) < 1000
    assert header["size_categories"] == ["n<1K"]
    assert "# Synthetic social-media datasets: dataset card" in (out / "README.md").read_text()
    assert sorted(get_dataset_config_names(str(out))) == sorted(sets)
    # the datasets cache in the test's folder, not the user's
    loaded = load_dataset(str(out), "markov-mptm", split="train", cache_dir=str(tmp_path / "hf"))
    assert loaded.num_rows == sets["markov-mptm"]
    assert loaded.features["text"].dtype == "string" and "example_ids" in loaded.features
    # Croissant: valid, and its records are the set's rows
    dataset = mlc.Dataset(jsonld=out / "croissant.json")
    records = list(itertools.islice(dataset.records(record_set="markov-mptm"), 1000))
    assert len(records) == sets["markov-mptm"]
    assert {r["markov-mptm/text"].decode() for r in records} == set(loaded["text"])
    croissant = json.loads((out / "croissant.json").read_text())
    fields = {f["name"]: f for f in croissant["recordSet"][0]["field"]}
    assert fields["text"]["description"].startswith("post text")  # the schema's own words
    # the upload: one commit holding every file, the key from the environment and nowhere else
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_publish_test_token")
    with FakeHub() as hub:
        upload(out, "lab/synthetic-demo", True, manifest["config_hash"], endpoint=hub.url)
    (commit,) = hub.log.commits
    assert commit.repo == "lab/synthetic-demo" and commit.token == "hf_publish_test_token"
    created = hub.log.repos["lab/synthetic-demo"]
    assert created.get("visibility") == "private" or created.get("private") is True
    assert sorted(commit.files) == sorted(summary["files"])
    assert commit.message.startswith("mpsynth ") and manifest["config_hash"][:12] in commit.message
    for name, data in commit.files.items():
        assert data == (out / name).read_bytes()
        assert b"hf_publish_test_token" not in data


def test_publish_refuses_real_posts_whose_licence_is_not_stated_or_forbids_it(
    finished_run, tmp_path
):
    from mpsynth.core.errors import StageError
    from mpsynth.publish.folder import check_real_licences, publish_folder

    _, config, _ = finished_run
    with pytest.raises(StageError, match=r"posts\.csv: no licence stated"):
        publish_folder(config.run_dir, tmp_path / "out", include_real=True)
    spec = config.ingest.inputs[0].model_copy(update={"license": "LicenseRef-X-Terms-of-Service"})
    closed = config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"inputs": [spec]})}
    )
    with pytest.raises(StageError, match="LicenseRef-X-Terms-of-Service"):
        check_real_licences(closed)
    # the bundled demo posts state each row's licence, and every one allows passing them on
    demo = check_real_licences(load_config("configs/demo.yaml"))
    assert sorted(demo["data/demo/posts.csv"]) == [
        "Apache-2.0",
        "CC-BY-4.0 (FiveThirtyEight data policy)",
        "CC-BY-4.0 (UCI YouTube Spam Collection)",
        "CC-BY-NC-SA-4.0 (TRAC-1)",
    ]


def test_the_viewer_browses_opens_flags_and_its_export_drops_posts(finished_run, tmp_path):
    """viewer.html in a real headless browser: a set by platform, topic and search, a post with
    the real examples its prompt showed, two posts flagged and exported; `mpsynth drop` with the
    export takes them out of the set, the metrics, the card and the viewer."""
    import asyncio
    import os

    from mpsynth.testing.browser import Page, require_chromium

    require_chromium("viewer")
    _copy_of(finished_run, tmp_path)
    root = tmp_path / "run"
    name = "markov-mptm"
    posts = pq.read_table(root / "structure" / "synthetic" / f"{name}.parquet").to_pylist()
    real = {r["id"]: r for r in pq.read_table(root / "ingest" / "posts.parquet").to_pylist()}
    platform = posts[0]["platform"]
    topic = posts[0]["topic"]
    word = max(posts[0]["text"].split(), key=len).lower()
    shot = tmp_path / "viewer.png"

    async def review() -> dict:
        async with Page(tmp_path / "profile") as page:
            await page.goto((root / "report" / "viewer.html").as_uri() + f"#set={name}")
            seen = {"rows": await page.js("document.querySelectorAll('#posts .post').length")}
            await page.js(
                f"(s => {{ s.value = {json.dumps(platform)}; s.onchange({{target: s}}) }})"
                "(document.getElementById('platform'))"
            )
            await page.js(
                f"(s => {{ s.value = {json.dumps(str(topic))}; s.onchange({{target: s}}) }})"
                "(document.getElementById('topic'))"
            )
            seen["filtered"] = await page.js("document.getElementById('count').textContent")
            seen["topic_label"] = await page.js(
                "document.getElementById('topic').selectedOptions[0].textContent"
            )
            await page.js(
                f"(s => {{ s.value = {json.dumps(word)}; s.oninput({{target: s}}) }})"
                "(document.getElementById('search'))"
            )
            seen["searched"] = await page.js("document.getElementById('count').textContent")
            await page.js("document.querySelector('#posts .post').click()")
            seen["opened"] = await page.js("document.querySelector('#posts .post.open').dataset.id")
            seen["examples"] = await page.js(
                "[...document.querySelectorAll('#examples .body')].map(e => e.firstChild.data)"
            )
            await page.screenshot(shot)
            await page.goto((root / "report" / "viewer.html").as_uri() + f"#set={name}")
            # a new hash on the same page: the view resets once its hashchange has run
            await page.wait_for(
                f"document.getElementById('count').textContent.startsWith('{len(posts)} posts')"
            )
            await page.js(
                "[...document.querySelectorAll('#posts .post input')].slice(0, 2)"
                ".forEach(b => b.click())"
            )
            seen["flagged"] = await page.js(
                "[...document.querySelectorAll('#posts .post.flagged')].map(e => e.dataset.id)"
            )
            await page.js("document.getElementById('export').click()")
            seen["export"] = await page.js("document.getElementById('exported').value")
            return seen

    seen = asyncio.run(review())
    assert seen["rows"] == min(50, len(posts))
    cell = [p for p in posts if p["platform"] == platform and p["topic"] == topic]
    assert seen["filtered"].startswith(f"{len(cell)} posts")
    assert seen["topic_label"].startswith(f"{topic}: ")  # named by its keywords
    found = [p for p in cell if word in p["text"].lower()]
    assert seen["searched"].startswith(f"{len(found)} posts")
    opened = next(p for p in posts if p["id"] == seen["opened"])
    assert seen["examples"] == [real[i]["text"] for i in opened["example_ids"]]
    from matplotlib.image import imread

    assert imread(shot).shape[:2] == (900, 1400)
    if os.environ.get("MPSYNTH_SCREENSHOTS"):  # where the README's picture comes from
        shutil.copyfile(shot, os.path.join(os.environ["MPSYNTH_SCREENSHOTS"], "viewer.png"))
    flagged = seen["flagged"]
    assert len(flagged) == 2
    lines = [ln for ln in seen["export"].splitlines() if not ln.startswith("#")]
    assert lines == sorted(f"{name}\t{i}" for i in flagged)
    # the export, as a file, is what `mpsynth drop` takes
    ids = tmp_path / "flagged-ids.txt"
    ids.write_text(seen["export"])
    before = pq.read_table(root / "evaluate" / "metrics.parquet").to_pylist()
    assert main(["drop", str(root), "--ids", str(ids)]) == 0
    kept = pq.read_table(root / "structure" / "synthetic" / f"{name}.parquet")
    dropped = pq.read_table(root / "structure" / "dropped" / f"{name}.parquet")
    assert not set(flagged) & set(kept["id"].to_pylist())
    assert set(flagged) <= set(dropped["id"].to_pylist())
    assert kept.num_rows + dropped.num_rows == len(posts)
    untouched = "structure/synthetic/markov-per_platform.parquet"  # a set nobody flagged
    assert pq.read_table(root / untouched).equals(
        pq.read_table(finished_run[1].run_dir / untouched)
    )
    after = pq.read_table(root / "evaluate" / "metrics.parquet").to_pylist()

    def posts_measured(rows):
        return next(
            r["n"] for r in rows
            if r["dataset"] == name and r["platform"] == "all" and r["metric"] == "mean_chars"
        )  # fmt: skip

    assert posts_measured(after) == posts_measured(before) - dropped.num_rows
    card = (root / "report" / "dataset_card.md").read_text()
    assert str(kept.num_rows) in card
    viewer = (root / "report" / "viewer.html").read_text()
    data = json.loads(viewer.split('type="application/json">')[1].split("</script>")[0])
    shown = {p["id"] for p in data["sets"][name]["posts"]}
    assert not set(flagged) & shown and len(shown) == kept.num_rows


def test_the_coordination_export_writes_every_placeable_post_of_each_set(finished_run, tmp_path):
    """Each set and the real posts in the coordination-network-toolkit's CSV: every post with an
    account and a time, the rest counted (the toolkit's own run on an export is in
    tests/test_coordination_export.py)."""
    import csv

    from mpsynth.publish.coordination import COLUMNS, export_coordination

    _, config, _ = finished_run
    written = export_coordination(config.run_dir, tmp_path / "export")
    sets = {p.stem: p for p in (config.run_dir / "structure" / "synthetic").glob("*.parquet")}
    assert set(written) == {"real", *sets}
    for name, path in {"real": config.run_dir / "ingest" / "posts.parquet", **sets}.items():
        posts = pq.read_table(path)
        placeable = sum(
            a is not None and t is not None
            for a, t in zip(
                posts["author"].to_pylist(), posts["timestamp"].to_pylist(), strict=True
            )
        )
        assert written[name] == (placeable, posts.num_rows - placeable)
        with (tmp_path / "export" / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == COLUMNS and len(rows) - 1 == placeable
