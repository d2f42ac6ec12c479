"""The text classifier of a labelled run: TF-IDF features with logistic regression or gradient-
boosted trees (xgboost), one model over the classes or, multi-label, one binary model per class.
The same class trains on the real seed (for cues and the label filter) and in every cell of the
utility grid, so every comparison uses one model. Fitting is seeded and fast enough to repeat, so
the model is fitted again where needed rather than pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import f1_score

from mpsynth.core.schema import LABEL_JOIN

KINDS = ("logistic", "xgboost")
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


JOIN = LABEL_JOIN  # the classes of a multi-label post, in one label: "anger+sadness"


def indicator(labels: list[str], classes: list[str]) -> np.ndarray:
    """(posts, classes) booleans: the classes each label holds."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(labels), len(classes)), dtype=bool)
    for row, label in enumerate(labels):
        out[row, [index[c] for c in label.split(JOIN)]] = True
    return out


def at_least_one(proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """A multi-label prediction: every class at or above the threshold, else the likeliest one
    (every post of a multi-label corpus has a class)."""
    chosen = proba >= threshold
    empty = ~chosen.any(axis=1)
    chosen[np.flatnonzero(empty), proba[empty].argmax(axis=1)] = True
    return chosen


@dataclass
class TextClassifier:
    """`multi_label`: one binary model per class (one-vs-rest); labels are then class combinations
    ("anger+sadness"), probabilities independent per class and predictions class indicators."""

    kind: str
    classes: list[str]
    seed: int = 0
    max_features: int = 20_000
    min_df: int = 2
    multi_label: bool = False
    vectorizer: TfidfVectorizer = field(init=False)
    model: object = field(init=False)

    def fit(self, texts: list[str], labels: list[str]) -> TextClassifier:
        if self.multi_label:
            return self._fit_multi(texts, labels)
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[label] for label in labels])
        x = self._vectorise(texts)
        self.model = self._estimator()
        present = np.unique(y)
        if len(present) < len(self.classes):
            # a training set missing a class (synthetic data alone, say): fit on what is there and
            # give the missing classes zero probability
            self._columns = present
            y = np.searchsorted(present, y)
        else:
            self._columns = np.arange(len(self.classes))
        self.model.fit(x, y)
        return self

    def _vectorise(self, texts: list[str]):
        # min_df above the corpus size would leave no vocabulary on a tiny training set
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        self.vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            min_df=min_df,
            max_features=self.max_features,
            token_pattern=TOKEN_PATTERN,
        )
        return self.vectorizer.fit_transform(texts)

    def _estimator(self):
        match self.kind:
            case "logistic":
                from sklearn.linear_model import LogisticRegression

                return LogisticRegression(C=10.0, max_iter=2000, random_state=self.seed)
            case "xgboost":
                from xgboost import XGBClassifier

                return XGBClassifier(
                    n_estimators=300,
                    max_depth=6,
                    learning_rate=0.1,
                    tree_method="hist",
                    n_jobs=1,
                    random_state=self.seed,
                )
            case _:
                raise ValueError(f"unknown classifier {self.kind!r} (known: {', '.join(KINDS)})")

    def _fit_multi(self, texts: list[str], labels: list[str]) -> TextClassifier:
        """One binary model per class; a class every training post has, or none has, gets a
        constant probability instead (1 or 0)."""
        x = self._vectorise(texts)
        y = indicator(labels, self.classes)
        self.model = {}
        self._constant = {}
        for c in range(len(self.classes)):
            if y[:, c].all() or not y[:, c].any():
                self._constant[c] = float(y[:, c].all())
            else:
                self.model[c] = self._estimator().fit(x, y[:, c].astype(int))
        self._columns = np.array(sorted(self.model), dtype=np.int64)
        return self

    def features(self, texts: list[str]):
        return self.vectorizer.transform(texts)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(posts, classes) probabilities, columns in `classes` order (multi-label: each class's
        own, independent of the others)."""
        proba = np.zeros((len(texts), len(self.classes)))
        if not texts:
            return proba
        if self.multi_label:
            x = self.features(texts)
            for c, model in self.model.items():
                proba[:, c] = model.predict_proba(x)[:, 1]
            for c, value in self._constant.items():
                proba[:, c] = value
            return proba
        proba[:, self._columns] = self.model.predict_proba(self.features(texts))
        return proba

    def predict(self, texts: list[str]) -> np.ndarray:
        """Class indices into `classes`; multi-label: (posts, classes) class indicators."""
        proba = self.predict_proba(texts)
        return at_least_one(proba) if self.multi_label else proba.argmax(axis=1)

    def label_probability(self, texts: list[str], labels: list[str]) -> np.ndarray:
        """Each post's probability of its own label: the class's, or for a combination the least
        of its classes' (every one of them must be there)."""
        proba = self.predict_proba(texts)
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array(
            [min(proba[i, index[c]] for c in label.split(JOIN)) for i, label in enumerate(labels)]
        )

    def vocabulary(self) -> np.ndarray:
        return self.vectorizer.get_feature_names_out()


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Macro-F1 of class indices, or of (posts, classes) indicators in a multi-label run."""
    return float(np.mean(per_class_f1(truth, predicted, n_classes)))


def per_class_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    labels = None if np.ndim(truth) == 2 else list(range(n_classes))
    return f1_score(truth, predicted, labels=labels, average=None, zero_division=0).astype(float)


def is_cue_word(word: str) -> bool:
    """Words worth putting in a prompt: not a stop word, not a number."""
    return word not in ENGLISH_STOP_WORDS and not word.isdigit()
