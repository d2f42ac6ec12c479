"""Cues: the words that drive each class, for SHAP-guided prompts.

Every candidate classifier is fitted on the real seed and scored on the validation split (macro-F1);
the best is explained with SHAP (the linear explainer for logistic regression, the tree explainer
for xgboost) on a stratified sample of seed posts. A word's SHAP score for a class is the sum of its
SHAP values toward that class in the class's posts that hold it, over the class's posts; its TF-IDF differential is the class's mean TF-IDF
minus the other classes' mean. Both are scaled to the class's best word and averaged; stop words and
numbers are left out. The test split is never read here.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.config.labelled import CuesConfig
from mpsynth.core import console
from mpsynth.labelled.classifier import JOIN, TextClassifier, indicator, is_cue_word, macro_f1
from mpsynth.labelled.labels import labelled_texts
from mpsynth.rundir.context import StageContext, write_table

CUES_SCHEMA = pa.schema(
    [
        pa.field("label", pa.string(), nullable=False),
        pa.field("rank", pa.int64(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("shap", pa.float64(), nullable=False),
        pa.field("tfidf_diff", pa.float64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)


@dataclass
class CueResult:
    cues: pa.Table
    chosen: str
    classes: list[str]  # every class of the seed and validation posts (inside combinations too)
    validation_macro_f1: dict[str, float]
    faithfulness: dict[str, dict[str, float]]  # class -> mean p(class) before / after ablation


def select_classifier(
    seed_texts: list[str],
    seed_labels: list[str],
    validation_texts: list[str],
    validation_labels: list[str],
    classes: list[str],
    config: CuesConfig,
    seed: int,
    multi_label: bool = False,
) -> tuple[TextClassifier, dict[str, float]]:
    """Fit every candidate on the seed; the best on validation macro-F1 (ties: the first listed).
    `multi_label`: one-vs-rest models, scored on class indicators."""
    truth = (
        indicator(validation_labels, classes)
        if multi_label
        else np.array([classes.index(label) for label in validation_labels])
    )
    scores, fitted = {}, {}
    for kind in config.classifiers:
        model = TextClassifier(
            kind, classes, seed, config.max_features, config.min_df, multi_label=multi_label
        )
        fitted[kind] = model.fit(seed_texts, seed_labels)
        scores[kind] = macro_f1(truth, model.predict(validation_texts), len(classes))
    best = max(config.classifiers, key=lambda k: scores[k])
    return fitted[best], scores


def shap_matrix(model: TextClassifier, texts: list[str]) -> np.ndarray:
    """(posts, words, classes) SHAP values of the fitted model on `texts`."""
    import shap

    x = model.features(texts)
    if model.multi_label:  # each class's own binary model, explained toward the class
        full = np.zeros((x.shape[0], x.shape[1], len(model.classes)))
        for c, binary in model.model.items():
            explainer = (
                shap.LinearExplainer(binary, x)
                if model.kind == "logistic"
                else shap.TreeExplainer(binary)
            )
            full[:, :, c] = np.asarray(explainer.shap_values(x))
        return full
    match model.kind:
        case "logistic":
            values = shap.LinearExplainer(model.model, x).shap_values(x)
        case _:
            values = shap.TreeExplainer(model.model).shap_values(x)
    values = np.asarray(values)
    if values.ndim == 2:  # a binary model explains one column: the second class's side
        values = np.stack([-values, values], axis=2)
    full = np.zeros((values.shape[0], values.shape[1], len(model.classes)))
    full[:, :, model._columns] = values
    return full


def extract_cues(
    model: TextClassifier, texts: list[str], labels: list[str], config: CuesConfig, seed: int
) -> pa.Table:
    """The top `config.top_k` cue words per class, with their scores."""
    classes = model.classes
    member = indicator(labels, classes)  # the posts of each class (several per post: multi-label)
    units = np.unique(np.array(labels, dtype=object), return_inverse=True)[1]
    explained = _stratified(units, config.shap_sample, seed)
    values = shap_matrix(model, [texts[i] for i in explained])
    # only words a post holds: SHAP also credits a class for the absence of other classes' words
    # (a linear model's value is coef * (x - mean x)), which is no cue to write with
    present = (model.features([texts[i] for i in explained]) > 0).toarray()
    tfidf = model.features(texts)
    vocabulary = model.vocabulary()
    keep = np.array([is_cue_word(w) for w in vocabulary])
    rows: dict[str, list] = {name: [] for name in CUES_SCHEMA.names}
    for c, label in enumerate(classes):
        mine = member[explained, c]
        shap_score = (
            (values[mine, :, c] * present[mine]).mean(axis=0)
            if mine.any()
            else np.zeros(len(vocabulary))
        )
        inside = np.asarray(tfidf[member[:, c]].mean(axis=0)).ravel()
        outside = np.asarray(tfidf[~member[:, c]].mean(axis=0)).ravel()
        diff = inside - outside
        combined = (_scaled(shap_score) + _scaled(diff)) / 2
        combined[~keep] = -np.inf
        top = [i for i in np.argsort(-combined, kind="stable") if combined[i] > 0][: config.top_k]
        shap_top = set(np.argsort(-shap_score)[: config.top_k])
        diff_top = set(np.argsort(-diff)[: config.top_k])
        for rank, i in enumerate(top, start=1):
            rows["label"].append(label)
            rows["rank"].append(rank)
            rows["word"].append(str(vocabulary[i]))
            rows["score"].append(float(combined[i]))
            rows["shap"].append(float(shap_score[i]))
            rows["tfidf_diff"].append(float(diff[i]))
            rows["source"].append(
                "both"
                if i in shap_top and i in diff_top
                else "shap"
                if i in shap_top
                else "tfidf"
                if i in diff_top
                else "combined"
            )
    return pa.Table.from_pydict(rows, schema=CUES_SCHEMA)


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Positive scores over the class's best one; a word pushing away scores 0."""
    top = scores.max()
    return np.clip(scores, 0, None) / top if top > 0 else np.zeros_like(scores)


def _stratified(y: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        share = max(1, round(limit * len(members) / len(y)))
        picked.append(rng.choice(members, min(share, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def remove_words(texts: list[str], words: list[str]) -> list[str]:
    """The texts without any occurrence of `words` (whole tokens, any case)."""
    if not words:
        return list(texts)
    pattern = re.compile(
        r"(?iu)\b(?:"
        + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        + r")\b"
    )
    return [pattern.sub(" ", t) for t in texts]


def faithfulness(
    model: TextClassifier, texts: list[str], labels: list[str], cues: pa.Table, top: int
) -> dict[str, dict[str, float]]:
    """Per class: the classifier's mean probability for the class on its own (validation) posts,
    as they are and with the class's top cue words removed. Faithful cues lower it."""
    out = {}
    rows = cues.to_pylist()
    for c, label in enumerate(model.classes):
        mine = [t for t, lab in zip(texts, labels, strict=True) if label in lab.split(JOIN)]
        if not mine:
            continue
        words = [r["word"] for r in rows if r["label"] == label and r["rank"] <= top]
        before = model.predict_proba(mine)[:, c].mean()
        after = model.predict_proba(remove_words(mine, words))[:, c].mean()
        out[label] = {"posts": len(mine), "before": float(before), "after": float(after)}
    return out


def build_cues(
    seed_texts: list[str],
    seed_labels: list[str],
    validation_texts: list[str],
    validation_labels: list[str],
    config: CuesConfig,
    seed: int,
    multi_label: bool = False,
) -> CueResult:
    classes = sorted({c for lab in [*seed_labels, *validation_labels] for c in lab.split(JOIN)})
    model, scores = select_classifier(
        seed_texts,
        seed_labels,
        validation_texts,
        validation_labels,
        classes,
        config,
        seed,
        multi_label,
    )
    cues = extract_cues(model, seed_texts, seed_labels, config, seed)
    return CueResult(
        cues=cues,
        chosen=model.kind,
        classes=classes,
        validation_macro_f1=scores,
        faithfulness=faithfulness(
            model, validation_texts, validation_labels, cues, config.prompt_cues
        ),
    )


log = logging.getLogger(__name__)


def seed_classifier(ctx: StageContext) -> TextClassifier:
    """The cues stage's chosen classifier, fitted again on the seed (seeded, so the same model)."""
    chosen = json.loads(ctx.path("cues", "classifier.json").read_text())
    cues = ctx.config.labelled.cues
    texts, labels = labelled_texts(ctx, ("seed",))
    model = TextClassifier(
        chosen["chosen"],
        chosen["classes"],
        ctx.config.seed,
        cues.max_features,
        cues.min_df,
        multi_label=chosen.get("multi_label", False),
    )
    return model.fit(texts, labels)


def run_cues(ctx: StageContext, out: Path) -> dict[str, Any]:
    from mpsynth.labelled.cues import build_cues

    config = ctx.config.labelled.cues
    seed_texts, seed_labels = labelled_texts(ctx, ("seed",))
    val_texts, val_labels = labelled_texts(ctx, ("validation",))
    description = f"cues: fitting {', '.join(config.classifiers)} on {len(seed_texts)} seed posts"
    with console.progress(description, None, unit="models"):
        result = build_cues(
            seed_texts,
            seed_labels,
            val_texts,
            val_labels,
            config,
            ctx.config.seed,
            ctx.config.labelled.is_multi_label,
        )
    log.info(
        "cues: chose %s (validation macro-F1 %s)",
        result.chosen,
        ", ".join(f"{k} {v:.3f}" for k, v in result.validation_macro_f1.items()),
    )
    for label in sorted(set(result.cues.column("label").to_pylist())):
        words = result.cues.filter(pc.equal(result.cues.column("label"), label))
        log.info("cues %-10s %s", label, ", ".join(words.column("word").to_pylist()[:8]))
    classifier = {
        "chosen": result.chosen,
        "validation_macro_f1": result.validation_macro_f1,
        "classes": result.classes,
        "multi_label": ctx.config.labelled.is_multi_label,
        "faithfulness": result.faithfulness,
    }
    (out / "classifier.json").write_text(json.dumps(classifier, indent=2) + "\n")
    return {"cues": write_table(result.cues, out / "cues.parquet"), "classifier": result.chosen}
