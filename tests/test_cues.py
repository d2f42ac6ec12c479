"""The classifier, its cue words and their faithfulness, on the bundled TRAC-1 aggression sample."""

from __future__ import annotations

import numpy as np
import pytest

from mpsynth.config.labelled import CuesConfig
from mpsynth.labelled.classifier import TextClassifier
from mpsynth.labelled.cues import build_cues, extract_cues, remove_words, shap_matrix
from tests.conftest import read_rows


@pytest.fixture(scope="module")
def trac():
    rows = read_rows("trac1_aggression.csv")
    train = [r for r in rows if r["split"] == "train"]
    dev = [r for r in rows if r["split"] == "dev"]
    return (
        [r["text"] for r in train],
        [r["label"] for r in train],
        [r["text"] for r in dev],
        [r["label"] for r in dev],
    )


@pytest.fixture(scope="module")
def cues(trac):
    return build_cues(*trac, CuesConfig(top_k=15, prompt_cues=10), seed=0)


def test_the_classifier_is_chosen_on_validation_macro_f1(cues):
    assert set(cues.validation_macro_f1) == {"logistic", "xgboost"}
    assert cues.chosen == max(cues.validation_macro_f1, key=cues.validation_macro_f1.get)
    assert all(0.3 < v < 1 for v in cues.validation_macro_f1.values())  # well above chance (1/3)


def test_every_class_gets_ranked_content_words(cues):
    rows = cues.cues.to_pylist()
    assert {r["label"] for r in rows} == {"CAG", "NAG", "OAG"}
    for label in ("CAG", "NAG", "OAG"):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["rank"])
        assert len(mine) == 15
        scores = [r["score"] for r in mine]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0
        assert not {r["word"] for r in mine} & {"the", "and", "to", "of", "is"}
        # a cue pushes toward its class: its SHAP or its TF-IDF differential is positive
        assert all(r["shap"] > 0 or r["tfidf_diff"] > 0 for r in mine)


def test_cues_are_faithful_removing_them_lowers_the_class_probability(trac, cues):
    """Removing a class's top cue words from that class's validation posts lowers the classifier's
    mean probability for the class, for every class."""
    seed_texts, seed_labels, dev_texts, dev_labels = trac
    classes = sorted(set(seed_labels))
    model = TextClassifier(cues.chosen, classes, 0).fit(seed_texts, seed_labels)
    rows = cues.cues.to_pylist()
    for c, label in enumerate(classes):
        mine = [t for t, lab in zip(dev_texts, dev_labels, strict=True) if lab == label]
        top = [r["word"] for r in rows if r["label"] == label and r["rank"] <= 10]
        stripped = remove_words(mine, top)
        assert stripped != mine  # the cue words do occur in the class's own posts
        before = model.predict_proba(mine)[:, c].mean()
        after = model.predict_proba(stripped)[:, c].mean()
        assert after < before, (label, before, after)
    # the stage records the same check
    assert all(v["after"] < v["before"] for v in cues.faithfulness.values())


def test_removing_random_words_of_the_same_count_lowers_it_less(trac, cues):
    """The cues are the class's drivers, not just any words: random vocabulary of the same size
    moves the probability much less."""
    seed_texts, seed_labels, dev_texts, dev_labels = trac
    classes = sorted(set(seed_labels))
    model = TextClassifier(cues.chosen, classes, 0).fit(seed_texts, seed_labels)
    vocabulary = model.vocabulary()
    rng = np.random.default_rng(0)
    label, c = "OAG", classes.index("OAG")
    mine = [t for t, lab in zip(dev_texts, dev_labels, strict=True) if lab == label]
    top = [r["word"] for r in cues.cues.to_pylist() if r["label"] == label and r["rank"] <= 10]
    random_words = list(rng.choice(vocabulary, 10, replace=False))
    before = model.predict_proba(mine)[:, c].mean()
    cue_drop = before - model.predict_proba(remove_words(mine, top))[:, c].mean()
    random_drop = before - model.predict_proba(remove_words(mine, random_words))[:, c].mean()
    assert cue_drop > 3 * abs(random_drop)


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_shap_values_explain_the_model_output(trac, kind):
    """Each explainer's values add up (with its base value) to the model's margin: checked by
    their sign agreeing with the predicted class on most posts."""
    seed_texts, seed_labels, *_ = trac
    classes = sorted(set(seed_labels))
    model = TextClassifier(kind, classes, 0).fit(seed_texts[:600], seed_labels[:600])
    values = shap_matrix(model, seed_texts[:200])
    assert values.shape[0] == 200 and values.shape[2] == 3
    predicted = model.predict(seed_texts[:200])
    pushed = values.sum(axis=1).argmax(axis=1)
    assert (pushed == predicted).mean() > 0.7


def test_a_binary_model_gets_cues_for_both_classes():
    rows = read_rows("youtube_spam.csv")
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    model = TextClassifier("logistic", ["ham", "spam"], 0).fit(texts, labels)
    table = extract_cues(model, texts, labels, CuesConfig(top_k=5), seed=0)
    words = {
        label: [r["word"] for r in table.to_pylist() if r["label"] == label]
        for label in ("ham", "spam")
    }
    assert len(words["spam"]) == 5 and len(words["ham"]) >= 1
    assert {"check", "channel", "subscribe"} & set(words["spam"])
    assert not set(words["spam"]) & set(words["ham"])


@pytest.fixture(scope="module")
def emotions():
    """GoEmotions' Ekman emotions as they come: one or several per post."""
    rows = [r for r in read_rows("goemotions.csv") if r["label_ekman"]]
    labels = ["+".join(sorted(set(r["label_ekman"].split(";")))) for r in rows]
    texts = [r["text"] for r in rows]
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    validation = [i for i, r in enumerate(rows) if r["split"] != "train"]
    return (
        [texts[i] for i in train],
        [labels[i] for i in train],
        [texts[i] for i in validation],
        [labels[i] for i in validation],
    )


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_a_multi_label_classifier_is_one_vs_rest_and_explains_each_class(emotions, kind):
    texts, labels, val_texts, _ = emotions
    classes = sorted({c for label in labels for c in label.split("+")})
    model = TextClassifier(kind, classes, 0, multi_label=True).fit(texts, labels)
    proba = model.predict_proba(val_texts)
    assert proba.shape == (len(val_texts), len(classes))
    assert not np.allclose(proba.sum(axis=1), 1.0)  # independent per class, not a softmax
    chosen = model.predict(val_texts)
    assert chosen.dtype == bool and chosen.any(axis=1).all()
    # a combination's probability is its least likely class's
    both = model.label_probability(val_texts[:5], ["anger+joy"] * 5)
    np.testing.assert_allclose(
        both, np.minimum(proba[:5, classes.index("anger")], proba[:5, classes.index("joy")])
    )
    values = shap_matrix(model, texts[:150])
    assert values.shape == (150, len(model.vocabulary()), len(classes))
    # each class's values follow its own model: pushing toward it where it is likely
    joy = classes.index("joy")
    agree = (values[:, :, joy].sum(axis=1) > 0) == (model.predict_proba(texts[:150])[:, joy] > 0.5)
    assert agree.mean() > 0.7


def test_multi_label_cues_come_per_class_from_the_posts_holding_it(emotions):
    texts, labels, val_texts, val_labels = emotions
    result = build_cues(
        texts, labels, val_texts, val_labels, CuesConfig(classifiers=["logistic"]), 0, True
    )
    found = {r["label"] for r in result.cues.to_pylist()}
    assert not any("+" in label for label in found)  # cues are per class, never per combination
    assert {"joy", "anger", "sadness", "neutral", "surprise"} <= found
    joy = [r["word"] for r in result.cues.to_pylist() if r["label"] == "joy"]
    assert {"thanks", "love", "thank", "great", "good"} & set(joy)
    assert 0 < result.validation_macro_f1["logistic"] < 1
    assert result.faithfulness["joy"]["after"] < result.faithfulness["joy"]["before"]
