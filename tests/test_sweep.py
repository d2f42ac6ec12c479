"""`mpsynth sweep`: the grid file, the effect estimates, and a sweep on real posts that computes
each distinct stage once and resumes without redoing anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from mpsynth.config.sweep import SweepGrid, load_grid, overrides_of
from mpsynth.core.errors import ConfigError
from mpsynth.metrics.compare import metric_row
from mpsynth.metrics.sensitivity import chance_effect, level_codes, main_effect, noise_of
from mpsynth.report.sensitivity import fidelity_values, sensitivity_tables
from tests.conftest import DEMO_COLUMNS, REPO, first_per_platform, write_csv


def test_a_grid_runs_every_combination_in_a_stable_order():
    grid = SweepGrid(
        grid={"topics.min_cluster_size": [10, 15], "pools.examples_per_prompt": [5, 9]}
    )
    assert grid.variations() == [
        {"topics.min_cluster_size": 10, "pools.examples_per_prompt": 5},
        {"topics.min_cluster_size": 10, "pools.examples_per_prompt": 9},
        {"topics.min_cluster_size": 15, "pools.examples_per_prompt": 5},
        {"topics.min_cluster_size": 15, "pools.examples_per_prompt": 9},
    ]
    assert overrides_of({"a.b": 0.5, "c": "x"}) == ["a.b=0.5", 'c="x"']


def test_a_sample_draws_distinct_variations_with_its_seed_and_ranges_stay_inside():
    raw = {
        "grid": {"topics.min_cluster_size": [5, 10, 15, 20], "x.t": {"low": 0.5, "high": 1.5}},
        "sample": 6,
        "seed": 3,
    }
    first, again = SweepGrid(**raw).variations(), SweepGrid(**raw).variations()
    assert first == again and len(first) == 6
    assert len({json.dumps(v, sort_keys=True) for v in first}) == 6
    assert all(0.5 <= v["x.t"] <= 1.5 for v in first)
    assert SweepGrid(**{**raw, "seed": 4}).variations() != first


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"grid": {}}, "at least one setting"),
        ({"grid": {"topics.min_cluster_size": [10]}}, "at least two values"),
        ({"grid": {"a": [1, 1]}}, "listed twice"),
        ({"grid": {"a": {"low": 0, "high": 1}}}, "set `sample`"),
        ({"grid": {"a": {"low": 2, "high": 1}}, "sample": 2}, "must be above low"),
        ({"grid": {"a": [1, 2]}, "colour": 1}, "colour"),
    ],
)
def test_a_bad_grid_file_names_what_is_wrong(tmp_path, raw, says):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=str(path)) as error:
        load_grid(path)
    assert says in str(error.value)


def test_a_sample_as_large_as_the_grid_is_refused():
    with pytest.raises(ConfigError, match="leave it out"):
        SweepGrid(grid={"a": [1, 2], "b": [1, 2]}, sample=4).variations()


def test_a_main_effect_finds_the_setting_that_moves_a_metric_and_not_the_one_that_does_not():
    rng = np.random.default_rng(0)
    # a 2x2x2 design, two repeats: the metric rises by 1.0 with `a`, not at all with `b`
    a = np.repeat([0, 1], 8)
    b = np.tile(np.repeat([0, 1], 4), 2)
    values = 2.0 + 1.0 * a + rng.normal(0, 0.1, 16)
    noise = np.full(16, 0.05)
    moved = main_effect(values, noise, a, 2, np.random.default_rng(1))
    still = main_effect(values, noise, b, 2, np.random.default_rng(1))
    assert moved.effect == pytest.approx(1.0, abs=0.15) and moved.moved
    assert moved.low < moved.effect < moved.high
    assert abs(still.effect) < 0.15 and not still.moved
    assert abs(moved.standardised) > 3 * abs(still.standardised)
    # a level without any variation: no effect to estimate
    assert main_effect(values, noise, np.zeros(16, int), 2, rng) is None


def test_noise_that_swamps_a_difference_widens_its_interval_past_zero():
    codes = np.array([0, 0, 1, 1])
    values = np.array([1.0, 1.0, 1.2, 1.2])
    quiet = main_effect(values, np.zeros(4), codes, 2, np.random.default_rng(0))
    noisy = main_effect(
        values, noise_of(values - 1.0, values + 1.0), codes, 2, np.random.default_rng(0)
    )
    assert quiet.moved and not noisy.moved


def test_chance_alone_gives_a_family_effect_near_its_expected_size():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(200, 8))  # 200 metrics no setting moves, four against four
    codes = np.repeat([0, 1], 4)
    chance = chance_effect(noise, codes, 2, np.random.default_rng(1))
    assert 0.45 < chance < 0.7  # E|N(0, 1/2)| = 0.56 for a difference of two means of four
    moved = noise + 3.0 * codes  # every metric moved by three standard deviations
    assert chance_effect(moved, codes, 2, np.random.default_rng(1)) < chance + 0.3


def test_levels_follow_the_grid_and_a_drawn_range_splits_at_its_median():
    codes, names = level_codes([9, 5, 9], [5, 9])
    assert codes.tolist() == [1, 0, 1] and names == ["5", "9"]
    codes, names = level_codes([0.2, 0.9, 0.4, 0.7], None)
    assert codes.tolist() == [0, 1, 0, 1] and names == ["<= 0.55", "> 0.55"]


def _metric(variation, dataset, metric, value, platform="all", family="lexical"):
    row = metric_row(family, metric, dataset, platform, value, 10, (value - 0.01, value + 0.01))
    return {**row, "variation": variation}


def test_fidelity_is_the_gap_to_the_real_value_or_to_the_ideal():
    rows = [
        _metric("v1", "real", "mean_hashtags", 1.0),
        _metric("v1", "syn", "mean_hashtags", 0.25),
        _metric("v1", "syn", "detectability_auc", 0.75, family="detectability"),
        _metric("v1", "syn", "posts", 40.0, platform="reddit"),
        _metric("v1", "syn", "posts", 60.0, platform="twitter"),
        _metric("v1", "real-holdout", "mean_hashtags", 0.9),  # the ceiling: no set a setting wrote
    ]
    values = fidelity_values(pa.Table.from_pylist(rows))
    assert {dataset for _, _, dataset in values} == {"syn"}
    assert values[("lexical", "mean_hashtags", "syn")]["v1"][:1] == (0.75,)
    assert values[("lexical", "mean_hashtags", "syn")]["v1"][2] == "gap to real"
    assert values[("detectability", "detectability_auc", "syn")]["v1"][0] == pytest.approx(0.25)
    assert values[("lexical", "posts", "syn")]["v1"][0] == 50.0  # no "all" row: the platforms' mean


def test_sensitivity_tables_rank_the_setting_that_moved_the_family_first():
    rows, settings = [], {}
    for number, (order, size) in enumerate([(1, 5), (1, 9), (2, 5), (2, 9)] * 2):
        name = f"v{number}"
        settings[name] = {"order": order, "size": size}
        rows.append(_metric(name, "real", "mean_words", 10.0))
        rows.append(_metric(name, "syn", "mean_words", 10.0 + 4.0 * (order == 1) + 0.1 * number))
    by_metric, by_family = sensitivity_tables(
        pa.Table.from_pylist(rows), settings, {"order": [1, 2], "size": [5, 9]}, resamples=300
    )
    first = by_family.to_pylist()[0]
    assert first["setting"] == "order" and first["metrics_moved"] == 1
    assert first["effect"] > first["by_chance"]  # beyond what shuffled settings give
    order = next(r for r in by_metric.to_pylist() if r["setting"] == "order")
    assert order["effect"] < -3.5 and order["moved"]  # order 2 closes the gap
    assert json.loads(order["levels"]) == ["1", "2"]


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory, demo_rows, ray_local):
    """Four variations on 100 real posts per platform: two topic settings x two Markov orders."""
    from mpsynth.orchestration.sweep import run_sweep

    tmp_path = tmp_path_factory.mktemp("sweep")
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 100), DEMO_COLUMNS)
    config = {
        "run_dir": str(tmp_path / "run"),
        "seed": 5,
        "ingest": {"inputs": [{"path": str(data)}]},
        "embed": {"embedder": {"kind": "lsa", "dimensions": 24}},
        "topics": {"n_neighbors": 8, "min_samples": 3},
        "pools": {"strategies": ["mptm"]},
        "generate": {
            "n_posts": 60,
            "generators": [{"name": "markov", "provider": {"kind": "markov"}}],
        },
        "evaluate": {"embedder": None, "ner_model": None},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    grid = {
        "grid": {"topics.min_cluster_size": [6, 10], "generate.generators.0.provider.order": [1, 2]}
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    summary = run_sweep(tmp_path / "config.yaml", tmp_path / "grid.yaml")
    return tmp_path, summary


@pytest.mark.timeout(900)  # four pipelines, in its fixture
def test_a_sweep_computes_each_distinct_stage_once(small_sweep):
    tmp_path, summary = small_sweep
    assert summary["finished"] == 4
    stages = summary["stages"]
    assert stages["ingest"] == {"ran": 1, "reused": 3}
    assert stages["embed"] == {"ran": 1, "reused": 3}
    assert stages["topics"] == {"ran": 2, "reused": 2}  # one fit per min_cluster_size
    assert stages["generate"] == {"ran": 4, "reused": 0}
    variations = pq.read_table(tmp_path / "run-sweep" / "variations.parquet").to_pylist()
    # a reused stage is the very files of the variation that computed it (hard links)
    adopted = next(v for v in variations if "topics" in v["stages_reused"])
    manifest = json.loads((Path(adopted["run_dir"]) / "manifest.json").read_text())
    donor = Path(manifest["stages"]["topics"]["reused_from"])
    files = sorted(p.relative_to(donor) for p in donor.rglob("*") if p.is_file())
    assert files
    for name in files:
        assert (Path(adopted["run_dir"]) / "topics" / name).stat().st_ino == (
            donor / name
        ).stat().st_ino
    # run one by one, the variations would have paid every shared stage again: each adopted
    # stage at the seconds it took where it was computed
    computed = adopted = 0.0
    for v in variations:
        manifest = json.loads((Path(v["run_dir"]) / "manifest.json").read_text())
        for stage, entry in manifest["stages"].items():
            if not entry.get("reused_from"):
                computed += entry["seconds"]
                continue
            while entry.get("reused_from"):  # to the variation that computed it
                origin = Path(entry["reused_from"]).parent / "manifest.json"
                entry = json.loads(origin.read_text())["stages"][stage]
            adopted += entry["seconds"]
    assert adopted > 0
    assert sum(v["seconds"] for v in variations) == pytest.approx(computed, abs=0.1)
    assert summary["one_by_one_s"] == pytest.approx(computed + adopted, abs=0.1)


def test_a_sweep_writes_every_metric_per_variation_and_the_sensitivity_page(small_sweep):
    tmp_path, _summary = small_sweep
    root = tmp_path / "run-sweep"
    metrics = pq.read_table(root / "metrics.parquet")
    assert sorted(set(metrics.column("variation").to_pylist())) == ["v01", "v02", "v03", "v04"]
    assert "setting:topics.min_cluster_size" in metrics.column_names
    families = pq.read_table(root / "sensitivity_families.parquet").to_pylist()
    assert {r["setting"] for r in families} == {
        "topics.min_cluster_size",
        "generate.generators.0.provider.order",
    }
    assert all(r["effect_low"] <= r["effect"] <= r["effect_high"] for r in families)
    for path in root.glob("*.parquet"):  # every column says what it is
        for column in pq.read_schema(path):
            assert (column.metadata or {}).get(b"description"), f"{path.name}: {column.name}"
    page = (root / "sensitivity.html").read_text()
    assert "Work done once" in page and page.count("<img") >= 2


def test_a_sweep_run_again_resumes_and_redoes_nothing(small_sweep):
    from mpsynth.orchestration.sweep import run_sweep

    tmp_path, _ = small_sweep
    root = tmp_path / "run-sweep"
    before = {
        p: json.loads(p.read_text())["stages"] for p in root.glob("variations/*/manifest.json")
    }
    again = run_sweep(tmp_path / "config.yaml", tmp_path / "grid.yaml")
    after = {
        p: json.loads(p.read_text())["stages"] for p in root.glob("variations/*/manifest.json")
    }
    assert after == before  # every stage of every variation up to date: not run, not copied
    assert again["finished"] == 4
    first, second = again["invocations"]  # the time of each invocation, added up
    assert again["wall_s"] == pytest.approx(first + second, abs=0.2)


def test_every_bad_grid_value_is_named_at_once_as_a_line_of_the_grid_file(tmp_path):
    from mpsynth.orchestration.sweep import plan_sweep

    path = tmp_path / "grid.yaml"
    path.write_text(
        yaml.safe_dump(
            {"grid": {"topics.min_cluster_size": [1, 15], "pools.examples_per_prompt": [0, 9]}}
        )
    )
    with pytest.raises(ConfigError) as error:
        plan_sweep(REPO / "configs" / "demo.yaml", load_grid(path), (), tmp_path / "out", path)
    message = str(error.value)
    assert message.startswith(f"invalid {path}:")
    assert "grid.topics.min_cluster_size: 1:" in message
    assert "grid.pools.examples_per_prompt: 0:" in message
    assert "demo.yaml" not in message


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (10, "give a list of values ([10, 15]) or a range"),
        ({"low": 1}, "a range needs high"),
        ({"low": 1, "hi": 2}, "a range needs high; hi is not a range setting"),
    ],
)
def test_a_mistyped_grid_entry_says_what_a_grid_entry_is(tmp_path, entry, says):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"grid": {"topics.min_cluster_size": entry}, "sample": 2}))
    with pytest.raises(ConfigError) as error:
        load_grid(path)
    assert f"grid.topics.min_cluster_size: {says}" in str(error.value)
    assert "function-after" not in str(error.value)


def test_with_generations_the_effect_interval_holds_their_spread_and_not_the_posts_noise():
    # two levels, two variations each, three generations per variation: the level moves the
    # metric by 0.5 while generations of one variation differ by about 1.0
    rng = np.random.default_rng(2)
    codes = np.repeat([0, 1], 6)
    clusters = np.repeat([0, 1, 2, 3], 3)
    values = 0.5 * codes + rng.normal(0, 1.0, 12)
    noise = np.full(12, 0.01)  # each value's bootstrap over posts: tiny
    clustered = main_effect(values, noise, codes, 2, np.random.default_rng(1), clusters=clusters)
    assert not clustered.moved  # generation noise swamps a 0.5 effect
    assert clustered.effect == pytest.approx(values[6:].mean() - values[:6].mean())
    # the posts' noise alone (what one generation shows) would call the same values moved
    naive = main_effect(values, noise, codes, 2, np.random.default_rng(1))
    assert clustered.high - clustered.low > naive.high - naive.low
    # a large effect survives the generations' spread
    strong = main_effect(
        5.0 * codes + rng.normal(0, 0.3, 12),
        noise,
        codes,
        2,
        np.random.default_rng(1),
        clusters=clusters,
    )
    assert strong.moved


def test_a_sweeps_generations_are_observations_of_their_variation():
    rows = []
    for variation, order in (("v01", 1), ("v02", 2)):
        for replicate in (1, 2, 3):
            value = (0.2 if order == 1 else 0.6) + 0.01 * replicate
            rows.append(
                {
                    **metric_row("detectability", "detectability_auc", "m-mptm", "all", value, 100),
                    "variation": variation,
                    "replicate": replicate,
                }
            )
    metrics = pa.Table.from_pylist(rows)
    values = fidelity_values(metrics)
    assert sorted(values[("detectability", "detectability_auc", "m-mptm")]) == [
        "v01/1",
        "v01/2",
        "v01/3",
        "v02/1",
        "v02/2",
        "v02/3",
    ]
    by_metric, _ = sensitivity_tables(
        metrics, {"v01": {"order": 1}, "v02": {"order": 2}}, {"order": [1, 2]}
    )
    (found,) = by_metric.to_pylist()
    assert json.loads(found["level_means"]) == pytest.approx([0.3 - 0.02, 0.1 + 0.02], abs=1e-6)


@pytest.mark.timeout(600)
def test_the_sweeps_budget_is_one_cap_over_every_variation(tmp_path, demo_rows, ray_local):
    """A hosted generator with prices and a sweep budget of a fifth of what the variations would
    cost: generation stops request by request at the cap, and the sweep ends in an error."""
    import os

    from mpsynth.config import load_config
    from mpsynth.core.errors import StageError
    from mpsynth.generation.ledger import read_ledger
    from mpsynth.orchestration.pipeline import estimate
    from mpsynth.orchestration.sweep import plan_sweep, run_sweep, spent_usd
    from mpsynth.testing import FakeProviderServer
    from tests.conftest import hosted_run_config

    os.environ["MPSYNTH_SWEEP_KEY"] = "test-key"
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 40), DEMO_COLUMNS)
    with FakeProviderServer(api_key="test-key") as server:
        raw = hosted_run_config(
            tmp_path / "run", data, server.base_url, "MPSYNTH_SWEEP_KEY", max_tokens=256
        )
        raw["generate"]["n_posts"] = 60
        raw["generate"]["prices"] = {
            "test-model": {"input_per_mtok": 100.0, "output_per_mtok": 400.0}
        }
        raw["generate"]["cache"] = False  # each variation pays for its own answers
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
        (row,) = estimate(
            load_config(tmp_path / "config.yaml", ["run_dir=" + str(tmp_path / "est")])
        )
        budget = round(0.2 * 2 * row["expected_usd"], 6)  # two variations, a fifth of their cost
        grid = {"grid": {"generate.generators.0.temperature": [1.0, 1.2]}, "budget_usd": budget}
        (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
        with pytest.raises(StageError, match=r"budget_usd=\$.* stopped"):
            run_sweep(tmp_path / "config.yaml", tmp_path / "grid.yaml")
        sent = len(server.log.requests)
    variations = plan_sweep(
        tmp_path / "config.yaml", load_grid(tmp_path / "grid.yaml"), (), tmp_path / "run-sweep"
    )
    assert 0 < spent_usd(variations, tmp_path / "run-sweep") <= budget  # never overshot
    # spent by the requests sent together, into the ledger the variations share
    assert read_ledger(tmp_path / "run-sweep" / "ledger" / "hosted").num_rows > 0
    assert 0 < sent < 2 * row["requests"]


def test_variations_asking_the_same_requests_send_them_once_together(
    tmp_path, demo_rows, ray_local
):
    """Two variations that differ after their prompts ask a hosted model the same requests: the
    sweep sends them together, each once, into one ledger both read; neither variation sends any."""
    import os

    from mpsynth.orchestration.sweep import run_sweep
    from mpsynth.testing import FakeProviderServer
    from tests.conftest import hosted_run_config

    os.environ["MPSYNTH_SWEEP_KEY"] = "test-key"
    data = write_csv(tmp_path / "posts.csv", first_per_platform(demo_rows, 40), DEMO_COLUMNS)
    with FakeProviderServer(api_key="test-key") as server:
        raw = hosted_run_config(tmp_path / "run", data, server.base_url, "MPSYNTH_SWEEP_KEY")
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
        (tmp_path / "grid.yaml").write_text(
            yaml.safe_dump({"grid": {"evaluate.bootstrap_samples": [10, 20]}})
        )
        summary = run_sweep(tmp_path / "config.yaml", tmp_path / "grid.yaml")
        sent = [r["body"]["messages"] for r in server.log.requests]
    root = tmp_path / "run-sweep"
    assert summary["finished"] == 2
    requests = [
        pq.read_table(v / "prompts" / "requests.parquet") for v in (root / "variations").iterdir()
    ]
    assert requests[0]["request_id"].to_pylist() == requests[1]["request_id"].to_pylist()
    assert len(sent) == requests[0].num_rows  # each request once, for both variations
    for variation in (root / "variations").iterdir():
        generated = json.loads((variation / "generate" / "summary.json").read_text())["hosted"]
        assert generated["ok"] == requests[0].num_rows and generated["missing"] == 0
        assert generated["this_run"] == {}  # every answer already in the sweep's ledger
        assert not (variation / "ledger").exists()
    assert (root / "ledger" / "hosted").is_dir()
