from __future__ import annotations

import pyarrow as pa
import pytest

from mpsynth.config import GeneratorConfig, PromptsConfig
from mpsynth.config.generation import MarkovProviderConfig
from mpsynth.core.errors import ConfigError
from mpsynth.stages.prompts.build import build_requests, load_template
from tests.conftest import first_per_platform


@pytest.fixture(scope="module")
def posts(demo_rows):
    rows = first_per_platform(demo_rows, 3)
    return pa.table({k: [r[k] for r in rows] for k in ("id", "platform", "text")})


def _pools(posts, seed=7):
    ids = posts["id"].to_pylist()
    return pa.table(
        {
            "pool_id": ["mptm-000000"],
            "strategy": ["mptm"],
            "topic": pa.array([4], pa.int64()),
            "target_platforms": [["reddit", "twitter"]],
            "example_ids": [ids[:6]],
            "seed": pa.array([seed], pa.int64()),
        }
    )


def _markov(**overrides):
    return [GeneratorConfig(name="markov", provider=MarkovProviderConfig(), **overrides)]


def test_messages_hold_the_real_examples_verbatim(posts):
    requests = build_requests(_pools(posts), posts, PromptsConfig(), _markov())
    user = requests["messages"][0].as_py()[1]["content"]
    for text in posts["text"].to_pylist()[:6]:
        assert text in user
    assert "Write 3 new posts for each of these platforms: reddit, twitter" in user
    assert '{"posts": [{"platform"' in user


def test_request_id_is_stable_and_changes_with_what_shapes_the_response(posts):
    base = build_requests(_pools(posts), posts, PromptsConfig(), _markov())["request_id"][0]
    again = build_requests(_pools(posts), posts, PromptsConfig(), _markov())["request_id"][0]
    hotter = build_requests(_pools(posts), posts, PromptsConfig(), _markov(temperature=0.7))
    reseeded = build_requests(_pools(posts, seed=8), posts, PromptsConfig(), _markov())
    more = build_requests(_pools(posts), posts, PromptsConfig(posts_per_platform=4), _markov())
    assert base == again
    assert (
        len({base, hotter["request_id"][0], reseeded["request_id"][0], more["request_id"][0]}) == 4
    )


def test_template_override_and_its_errors(tmp_path, posts):
    custom = tmp_path / "mptm.txt"
    custom.write_text(
        "Be brief.\n---\nTopic posts:\n$examples\nNow $posts_per_platform for $target_list."
    )
    config = PromptsConfig(templates={"mptm": custom})
    messages = build_requests(_pools(posts), posts, config, _markov())["messages"][0].as_py()
    assert messages[0]["content"] == "Be brief."
    assert messages[1]["content"].endswith("Now 3 for reddit, twitter.")
    custom.write_text("no separator here")
    with pytest.raises(ConfigError, match="separated by a '---' line"):
        load_template("mptm", config)
    with pytest.raises(ConfigError, match=r"prompts\.templates\.mptm: file not found"):
        load_template("mptm", PromptsConfig(templates={"mptm": tmp_path / "gone.txt"}))


def test_one_request_per_pool_and_generator_with_distinct_ids(posts):
    generators = [
        GeneratorConfig(name="markov", provider=MarkovProviderConfig()),
        GeneratorConfig(name="gpt", provider={"kind": "openai", "model": "gpt-4o-mini"}),
        GeneratorConfig(
            name="gpt_local",
            provider={
                "kind": "openai",
                "model": "gpt-4o-mini",
                "base_url": "http://localhost:8000/v1",
            },
        ),
    ]
    requests = build_requests(_pools(posts), posts, PromptsConfig(), generators)
    assert requests["generator"].to_pylist() == ["markov", "gpt", "gpt_local"]
    assert len(set(requests["request_id"].to_pylist())) == 3  # base_url is part of the identity
    # the key's variable name is not: renaming it must not orphan paid answers
    renamed = [
        GeneratorConfig(
            name="gpt", provider={"kind": "openai", "model": "gpt-4o-mini", "api_key_env": "OTHER"}
        )
    ]
    assert (
        build_requests(_pools(posts), posts, PromptsConfig(), renamed)["request_id"][0]
        == requests["request_id"][1]
    )


def test_a_class_combination_is_named_by_its_classes_and_shown_their_cues_in_turn():
    from mpsynth.labelled.pools import combined_cues
    from mpsynth.stages.prompts.build import label_text

    names = {"OAG": "overtly aggressive", "anger": "angry"}
    assert label_text("OAG", names) == "overtly aggressive"
    assert label_text("anger+sadness", names) == "angry and sadness"
    assert label_text("joy", {}) == "joy"
    ranked = {"anger": ["hate", "stupid", "worst"], "sadness": ["sad", "miss", "hate"]}
    assert combined_cues("anger+sadness", ranked, 5) == ["hate", "sad", "stupid", "miss", "worst"]
    assert combined_cues("anger", ranked, 2) == ["hate", "stupid"]
