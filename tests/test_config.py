from __future__ import annotations

import re

import pydantic
import pytest
import yaml

from mpsynth.config import apply_overrides, build_config, load_config
from mpsynth.core.errors import ConfigError
from tests.conftest import REPO

DEMO = REPO / "configs" / "demo.yaml"


def test_demo_config_loads_and_round_trips(tmp_path):
    config = load_config(DEMO)
    assert config.pools.examples_per_prompt == 9
    saved = tmp_path / "resolved.yaml"
    saved.write_text(config.to_yaml())
    assert load_config(saved) == config


def test_override_changes_nested_value():
    config = load_config(DEMO, ["generate.n_posts=200", "topics.min_dist=0.1"])
    assert config.generate.n_posts == 200
    assert config.topics.min_dist == 0.1


def test_invalid_value_names_key_and_what_is_allowed():
    with pytest.raises(ConfigError) as error:
        load_config(DEMO, ["generate.n_posts=0"])
    assert "generate.n_posts" in str(error.value)
    assert "greater than or equal to 1" in str(error.value)


def test_invalid_choice_lists_the_allowed_values():
    with pytest.raises(ConfigError) as error:
        load_config(DEMO, ["pools.strategies=[mptm, random]"])
    message = str(error.value)
    assert "pools.strategies.1" in message
    assert "'mptm'" in message and "'per_platform'" in message


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match=r"generate\.n_post: unknown setting"):
        load_config(DEMO, ["generate.n_post=5"])


def test_config_is_frozen():
    config = load_config(DEMO)
    with pytest.raises(pydantic.ValidationError):
        config.generate.n_posts = 5


def test_malformed_override_is_a_clear_error():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["generate.n_posts"])
    with pytest.raises(ConfigError, match="seed is not a section"):
        apply_overrides({"seed": 3}, ["seed.x=1"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_embedder_kind_selects_the_backend_and_defaults_to_lsa():
    config = load_config(DEMO, ["embed.embedder={kind: sentence-transformers, model: /models/x}"])
    assert config.embed.embedder.kind == "sentence-transformers"
    assert load_config(DEMO, ["embed.embedder={dimensions: 64}"]).embed.embedder.kind == "lsa"
    with pytest.raises(ConfigError, match=r"embed\.embedder\.lsa\.model: unknown setting"):
        load_config(DEMO, ["embed.embedder={kind: lsa, model: x}"])


def test_set_reaches_list_items(tmp_path):
    config = load_config(
        DEMO,
        ["generate.generators.0.temperature=0.5", f"ingest.inputs.0.path={tmp_path / 'x.csv'}"],
    )
    assert config.generate.generators[0].temperature == 0.5
    assert config.generate.generators[0].provider.kind == "markov"  # the rest of the item stays
    assert config.ingest.inputs[0].path == tmp_path / "x.csv"


def test_set_reaches_into_a_default_list_the_config_leaves_out():
    raw = {"run_dir": "r", "ingest": {"inputs": [{"path": "a.csv"}]}}
    config = build_config(apply_overrides(raw, ["generate.generators.0.max_tokens=99"]))
    assert config.generate.generators[0].name == "markov"
    assert config.generate.generators[0].max_tokens == 99


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "generate.generators.3.temperature=1",
            "generate.generators has 1 item(s); 3 is out of range",
        ),
        (
            "generate.generators.first.temperature=1",
            "generate.generators is a list; pick an item by number",
        ),
    ],
)
def test_bad_list_overrides_name_the_list(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(DEMO, [override])


def test_unknown_key_lists_the_allowed_keys_of_its_section():
    with pytest.raises(ConfigError) as error:
        load_config(DEMO, ["topics.min_clustr_size=3"])
    assert "topics.min_clustr_size: unknown setting; allowed here: backend," in str(error.value)
    assert "min_cluster_size" in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config(DEMO, ["generate.generators.0.provider.ordr=3"])
    assert "allowed here: kind, model, order, max_words, min_training_posts" in str(error.value)


def test_the_saved_config_loads_back_as_the_same_config(tmp_path):
    """A run directory's config.yaml reads back as the config that wrote it, down to which
    columns an input named (a named column must exist, a default one may be absent)."""
    raw = {"run_dir": str(tmp_path / "run"), "ingest": {"inputs": [{"path": "posts.csv",
           "columns": {"text": "body"}}]}}  # fmt: skip
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(tmp_path / "config.yaml")
    (tmp_path / "saved.yaml").write_text(config.to_yaml())
    again = load_config(tmp_path / "saved.yaml")
    assert again == config
    assert again.ingest.inputs[0].columns.model_fields_set == {"text"}
