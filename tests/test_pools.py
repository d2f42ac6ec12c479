from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from mpsynth.config import CompositionConfig, PoolsConfig
from mpsynth.stages.pools import build_pools, cell_targets, largest_remainder, spread_examples
from tests.conftest import first_per_platform, holdout_of_nothing, read_rows


@pytest.fixture(scope="module")
def corpus(demo_rows):
    """Real posts (40 per platform) with a topic assignment whose platform mix is known:
    topic 0: twitter, reddit, facebook; topic 1: twitter, reddit; topic 2: twitter, reddit;
    topic 3: youtube only; half of facebook are outliers."""
    rows = first_per_platform(demo_rows, 40)
    topics, seen = [], Counter()
    for row in rows:
        i = seen[row["platform"]]
        seen[row["platform"]] += 1
        match row["platform"]:
            case "twitter" | "reddit":
                topics.append(i % 3)
            case "youtube":
                topics.append(3)
            case "facebook":
                topics.append(0 if i % 2 == 0 else -1)
    posts = pa.table({"id": [r["id"] for r in rows], "platform": [r["platform"] for r in rows]})
    assignments = pa.table({"id": [r["id"] for r in rows], "topic": topics})
    return posts, assignments


def _legacy(strategies):
    """Requests per topic by its size, every platform of the topic targeted (no composition)."""
    return PoolsConfig(strategies=strategies, composition=CompositionConfig(enabled=False))


def test_mptm_examples_share_one_topic_and_cover_its_platforms(corpus):
    posts, assignments = corpus
    pools, _ = build_pools(posts, assignments, _legacy(["mptm"]), 300, 3, seed=1)
    topic_of = dict(
        zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
    )
    platform_of = dict(zip(posts["id"].to_pylist(), posts["platform"].to_pylist(), strict=True))
    platforms_in = {
        0: {"twitter", "reddit", "facebook"},
        1: {"twitter", "reddit"},
        2: {"twitter", "reddit"},
        3: {"youtube"},
    }
    assert pools.num_rows > 0
    for pool in pools.to_pylist():
        examples = pool["example_ids"]
        assert len(examples) == 9 and len(set(examples)) == 9
        assert {topic_of[i] for i in examples} == {pool["topic"]}
        assert {platform_of[i] for i in examples} == platforms_in[pool["topic"]]
        assert set(pool["target_platforms"]) == platforms_in[pool["topic"]]


def test_mptm_requests_follow_topic_sizes_and_skip_outliers(corpus):
    posts, assignments = corpus
    pools, _ = build_pools(posts, assignments, _legacy(["mptm"]), 600, 3, seed=1)
    per_topic = Counter(pools["topic"].to_pylist())
    assert -1 not in per_topic
    # synthetic posts per topic = requests x 3 posts x platforms; sizes are 47, 27, 26, 40 posts
    posts_per_topic = {t: n * 3 * {0: 3, 1: 2, 2: 2, 3: 1}[t] for t, n in per_topic.items()}
    total = sum(posts_per_topic.values())
    assert abs(total - 600) <= 9
    for topic, size in {0: 47, 1: 27, 2: 26, 3: 40}.items():
        assert posts_per_topic[topic] / total == pytest.approx(size / 140, abs=0.03)


def test_outliers_can_be_included(corpus):
    posts, assignments = corpus
    pools, _ = build_pools(
        posts, assignments, PoolsConfig(strategies=["mptm"], include_outliers=True), 600, 3, 1
    )
    assert -1 in set(pools["topic"].to_pylist())


def test_per_platform_pools_hold_one_platform(corpus):
    posts, assignments = corpus
    pools, _ = build_pools(posts, assignments, _legacy(["per_platform"]), 120, 3, seed=2)
    platform_of = dict(zip(posts["id"].to_pylist(), posts["platform"].to_pylist(), strict=True))
    assert pools.num_rows == 40
    assert Counter(p[0] for p in pools["target_platforms"].to_pylist()) == {
        "twitter": 10,
        "reddit": 10,
        "youtube": 10,
        "facebook": 10,
    }
    for pool in pools.to_pylist():
        assert pool["topic"] is None
        assert {platform_of[i] for i in pool["example_ids"]} == set(pool["target_platforms"])


def test_pools_are_deterministic_per_seed(corpus):
    posts, assignments = corpus
    config = PoolsConfig()
    first, targets = build_pools(posts, assignments, config, 200, 3, seed=5)
    again, same_targets = build_pools(posts, assignments, config, 200, 3, seed=5)
    assert first.equals(again) and targets.equals(same_targets)
    assert not first.equals(build_pools(posts, assignments, config, 200, 3, seed=6)[0])


def test_largest_remainder_sums_exactly():
    counts = largest_remainder(np.array([1.0, 1.0, 1.0]), 10)
    assert counts.sum() == 10 and sorted(counts.tolist()) == [3, 3, 4]
    assert largest_remainder(np.array([5.0, 0.0]), 3).tolist() == [3, 0]


def test_spread_examples_is_even_and_capped():
    assert spread_examples({"a": 100, "b": 100, "c": 100}, 9) == {"a": 3, "b": 3, "c": 3}
    assert spread_examples({"a": 100, "b": 1}, 9) == {"a": 8, "b": 1}
    assert spread_examples({"a": 2, "b": 1}, 9) == {"a": 2, "b": 1}
    assert sum(spread_examples({"a": 5, "b": 5, "c": 5, "d": 5}, 9).values()) == 9


def test_cell_targets_follow_the_real_cells_or_the_given_platform_shares():
    real = {(0, "twitter"): 60, (0, "facebook"): 2, (1, "twitter"): 38, (1, "reddit"): 100}
    targets = cell_targets(real, 100, CompositionConfig())
    assert sum(targets.values()) == 100
    assert targets == {
        (0, "twitter"): 30,
        (0, "facebook"): 1,
        (1, "twitter"): 19,
        (1, "reddit"): 50,
    }
    equal = cell_targets(real, 90, CompositionConfig(platforms="equal"))
    by_platform = Counter()
    for (_, platform), n in equal.items():
        by_platform[platform] += n
    assert by_platform == {"twitter": 30, "facebook": 30, "reddit": 30}
    assert equal[(0, "twitter")] == 18 and equal[(1, "twitter")] == 12  # twitter's own topic mix
    given = cell_targets(real, 10, CompositionConfig(platforms={"reddit": 1}))
    assert given[(1, "reddit")] == 10 and sum(given.values()) == 10
    with pytest.raises(Exception, match="names mastodon, which the real posts lack"):
        cell_targets(real, 10, CompositionConfig(platforms={"mastodon": 1}))


@pytest.mark.parametrize("strategy", ["mptm", "per_platform"])
def test_requests_ask_for_each_cells_target_and_no_more_than_one_request_over(corpus, strategy):
    posts, assignments = corpus
    pools, targets = build_pools(posts, assignments, PoolsConfig(strategies=[strategy]), 200, 3, 4)
    wanted = {(t["topic"], t["platform"]): t["target"] for t in targets.to_pylist()}
    assert sum(wanted.values()) == 200
    asked: Counter = Counter()
    for pool in pools.to_pylist():
        for platform in pool["target_platforms"]:
            asked[(pool["topic"], platform)] += 3
        assert len(pool["example_ids"]) == 9
    for cell, n in wanted.items():
        assert n <= asked[cell] < n + 3, (cell, n, asked[cell])
    assert set(asked) <= set(wanted)
    if strategy == "mptm":  # topic 0: facebook 20 posts, twitter 14, reddit 13
        topic0 = [p["target_platforms"] for p in pools.to_pylist() if p["topic"] == 0]
        named = Counter(name for targets in topic0 for name in targets)
        assert named["facebook"] > named["twitter"] >= named["reddit"]
        assert len(topic0) == named["facebook"]  # the largest cell is in every request


@pytest.mark.parametrize("composition", [True, False])
def test_enriched_pools_hold_the_share_of_band_posts_where_the_cell_has_them(
    corpus, demo_rows, composition
):
    from mpsynth.stages.enrichment import Enrichment, enriched_share

    posts, assignments = corpus
    # holders: the real posts that hold a link (a stand-in for posts with a band entity)
    text_of = {r["id"]: r["text"] for r in demo_rows}
    holders = frozenset(i for i in posts["id"].to_pylist() if "http" in text_of[i])
    assert 10 <= len(holders) <= 0.5 * posts.num_rows
    enrich = Enrichment(holders, share=0.4)
    config = PoolsConfig(composition=CompositionConfig(enabled=composition))
    plain, _ = build_pools(posts, assignments, config, 300, 3, seed=4)
    rich, _ = build_pools(posts, assignments, config, 300, 3, seed=4, enrich=enrich)
    assert plain.num_rows == rich.num_rows  # the same requests; only examples are swapped
    assert enriched_share(rich, enrich) > enriched_share(plain, enrich) + 0.2
    topic_of = dict(
        zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
    )
    platform_of = dict(zip(posts["id"].to_pylist(), posts["platform"].to_pylist(), strict=True))
    for before, after in zip(plain.to_pylist(), rich.to_pylist(), strict=True):
        assert len(set(after["example_ids"])) == len(after["example_ids"])
        # swaps stay within the pool's topic and each example's platform
        assert Counter(platform_of[e] for e in after["example_ids"]) == Counter(
            platform_of[e] for e in before["example_ids"]
        )
        if after["topic"] is not None:
            assert {topic_of[e] for e in after["example_ids"]} == {after["topic"]}


def test_enrichment_finds_the_band_entities_and_the_posts_that_mention_them(tmp_path, monkeypatch):
    import json

    from mpsynth.config import build_config
    from mpsynth.metrics.entities import frequency_bands, load_pipeline, post_entities
    from mpsynth.orchestration.pipeline import run_pipeline
    from mpsynth.rundir.context import StageContext
    from mpsynth.rundir.directory import RunDirectory
    from mpsynth.stages.enrichment import find_enrichment, load_enrichment
    from tests.conftest import TEST_DATA

    config = build_config(
        {
            "run_dir": str(tmp_path / "run"),
            "ingest": {"inputs": [{"path": str(TEST_DATA / "ira_tweets.csv")}]},
            "pools": {"entity_enrichment": {"band": "top", "share": 0.5}},
        }
    )
    run_pipeline(config, until="ingest")
    holdout_of_nothing(config.run_dir)  # the real posts, whole: no topics to stratify by here
    ctx = StageContext(config, RunDirectory(config.run_dir))
    out = tmp_path / "pools"
    out.mkdir()
    enrich = find_enrichment(ctx, out)
    found = json.loads((out / "enrichment.json").read_text())
    texts = [r["text"] for r in read_rows("ira_tweets.csv")]
    mentions = post_entities(load_pipeline("en_core_web_sm"), texts)
    top = frequency_bands(Counter(e for m in mentions for e in m))["top"]
    assert [(e["text"], e["label"]) for e in found["entities"]] == top
    assert len(enrich.holders) == sum(bool(m & set(top)) for m in mentions) == len(found["holders"])
    assert found["band"] == "top" and enrich.needed(9) == 5
    (ctx.run.stage_dir("pools")).mkdir(exist_ok=True)
    (ctx.run.stage_dir("pools") / "enrichment.json").write_text(json.dumps(found))
    assert load_enrichment(ctx) == enrich  # the deficit rounds draw with the same posts
    # every text went through the pipeline once: another band reads them all from the cache
    from mpsynth.metrics import entities

    def no_pipeline(name):
        raise AssertionError("the NER pipeline ran again")

    monkeypatch.setattr(entities, "load_pipeline", no_pipeline)
    again = StageContext(
        build_config(
            {
                **config.model_dump(mode="json"),
                "pools": {"entity_enrichment": {"band": "middle", "share": 0.5}},
            }
        ),
        ctx.run,
    )
    (tmp_path / "again").mkdir()
    find_enrichment(again, tmp_path / "again")
    middle = json.loads((tmp_path / "again" / "enrichment.json").read_text())
    assert middle["bands"] == found["bands"]  # the same entities, read back from the cache
    assert [[e["text"], e["label"]] for e in middle["entities"]] == [
        [t, lab] for t, lab, _ in found["bands"]["middle"]
    ]
