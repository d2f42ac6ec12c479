from __future__ import annotations

from collections import Counter

import pytest

from mpsynth.core.errors import MissingDependencyError
from mpsynth.metrics.entities import (
    entity_counts,
    entity_metrics,
    frequency_bands,
    load_pipeline,
)
from mpsynth.testing import build_tiny_ner_pipeline

ENTITIES = {
    "PERSON": ["Trump", "Donald Trump", "Obama", "Hillary", "Hillary Clinton", "Putin"],
    "GPE": ["Russia", "America", "USA", "Texas", "Syria"],
    "ORG": ["CNN", "FBI", "GOP", "NFL"],
}


@pytest.fixture(scope="module")
def nlp(tmp_path_factory):
    return load_pipeline(
        str(build_tiny_ner_pipeline(tmp_path_factory.mktemp("ner") / "pipeline", ENTITIES))
    )


def test_entities_in_real_tweets(nlp, demo_rows):
    tweets = [r["text"] for r in demo_rows if r["platform"] == "twitter"]
    counts = entity_counts(nlp, tweets)
    # checked by grepping the demo tweets: 'Trump' appears in dozens of them, case-insensitively
    assert counts[("trump", "PERSON")] >= 20
    assert {label for _, label in counts} <= {"PERSON", "GPE", "ORG"}
    single = entity_counts(nlp, ["Hillary Clinton met Putin in Syria"])
    assert single == Counter(
        {("hillary clinton", "PERSON"): 1, ("putin", "PERSON"): 1, ("syria", "GPE"): 1}
    )


def test_real_against_itself_misses_no_entity(nlp, demo_rows):
    tweets = [r["text"] for r in demo_rows if r["platform"] == "twitter"]
    counts = entity_counts(nlp, tweets)
    metrics = entity_metrics(counts, counts)
    assert (
        metrics["top20_real_entities_found"] == 1.0
        and metrics["bottom20_real_entities_found"] == 1.0
    )
    assert metrics["top20_frequency_rank_correlation"] == pytest.approx(1.0)
    assert all(
        v == 1.0 for k, v in metrics.items() if k.startswith("top20_") and k.endswith("_found")
    )


def test_entity_metrics_by_hand():
    real = Counter({("trump", "PERSON"): 5, ("russia", "GPE"): 3, ("cnn", "ORG"): 1})
    synthetic = Counter({("trump", "PERSON"): 2, ("cnn", "ORG"): 4})
    metrics = entity_metrics(real, synthetic, top_k=2)
    assert metrics["top2_real_entities_found"] == 0.5  # trump yes, russia no
    assert metrics["bottom2_real_entities_found"] == 0.5  # russia no, cnn yes
    assert metrics["top2_GPE_found"] == 0.0 and metrics["top2_PERSON_found"] == 1.0


def test_unknown_pipeline_names_the_setting():
    with pytest.raises(MissingDependencyError, match=r"evaluate\.ner_model='xx_no_such_pipeline'"):
        load_pipeline("xx_no_such_pipeline")


def test_the_packaged_english_pipeline_is_verified_and_loads_only_its_ner(demo_rows):
    nlp = load_pipeline("en_core_web_sm")
    assert nlp.pipe_names == ["ner"]  # the tagger, parser and the rest left out
    tweets = [r["text"] for r in demo_rows if r["platform"] == "twitter"]
    counts = entity_counts(nlp, tweets)
    # the IRA tweets talk about Trump and Obama, and name places and organisations
    assert counts[("trump", "PERSON")] >= 10 and counts[("obama", "PERSON")] >= 3
    assert {"PERSON", "GPE", "ORG"} <= {label for _, label in counts}


def test_packaged_weights_that_differ_from_the_pinned_hash_are_refused(monkeypatch):
    from dataclasses import replace

    from mpsynth.core.errors import InputError
    from mpsynth.metrics import entities

    wrong = replace(entities.EN_CORE_WEB_SM, ner_sha256="0" * 64)
    monkeypatch.setitem(entities.PACKAGED, "en_core_web_sm", wrong)
    with pytest.raises(InputError, match=r"is not the pinned 0{64}; reinstall"):
        entities.pipeline_location("en_core_web_sm")


def test_entity_bands_top_middle_and_bottom():
    real = Counter({(f"e{i:02d}", "ORG"): 100 - i for i in range(60)})  # e00 most frequent
    synthetic = Counter({("e00", "ORG"): 9, ("e01", "ORG"): 8, ("e30", "ORG"): 1})
    metrics = entity_metrics(real, synthetic, top_k=20)
    assert metrics["top20_real_entities_found"] == pytest.approx(2 / 20)
    assert metrics["middle20_real_entities_found"] == pytest.approx(1 / 20)  # ranks 20-39
    assert metrics["bottom20_real_entities_found"] == 0.0
    tied = Counter({(f"t{i}", "ORG"): 1 for i in range(30)})
    assert "bottom20_frequency_rank_correlation" not in entity_metrics(tied, tied)


def test_bands_read_a_long_tail_by_count_not_by_name_and_leave_out_entities_without_letters():
    real = Counter({(f"head{i}", "ORG"): 200 - i for i in range(20)})
    real.update({(f"mid{i}", "PERSON"): 10 + i % 5 for i in range(40)})  # counts 10 to 14
    real.update({(f"a{i:03d}", "ORG"): 1 for i in range(300)})  # the tail: one mention each
    real.update({("🤣", "PERSON"): 1, ("2016", "CARDINAL"): 50, ("zz", "GPE"): 1})
    bands = frequency_bands(real)
    assert bands["top"] == [(f"head{i}", "ORG") for i in range(20)]
    assert all(("2016", "CARDINAL") not in members for members in bands.values())
    assert ("🤣", "PERSON") not in bands["bottom"]
    # mid-frequency: entities near the median count above the tail, none of the tail
    assert len(bands["middle"]) == 20 and all(e[0].startswith("mid") for e in bands["middle"])
    # the tail's entities drawn by a fixed hash: not the first 20 names
    assert len(bands["bottom"]) == 20 and all(real[e] == 1 for e in bands["bottom"])
    assert sorted(e[0] for e in bands["bottom"]) != [f"a{i:03d}" for i in range(20)]
    assert frequency_bands(real) == bands  # deterministic
