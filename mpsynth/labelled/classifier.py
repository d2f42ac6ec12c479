"""The text classifier of a labelled run: TF-IDF features with logistic regression or gradient-
boosted trees (xgboost). The same class trains on the real seed (for cues and the label filter) and
in every cell of the utility grid, so every comparison uses one model. Fitting is seeded and fast
enough to repeat, so the model is fitted again where needed rather than pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import f1_score

KINDS = ("logistic", "xgboost")
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


@dataclass
class TextClassifier:
    kind: str
    classes: list[str]
    seed: int = 0
    max_features: int = 20_000
    min_df: int = 2
    vectorizer: TfidfVectorizer = field(init=False)
    model: object = field(init=False)

    def fit(self, texts: list[str], labels: list[str]) -> TextClassifier:
        index = {c: i for i, c in enumerate(self.classes)}
        y = np.array([index[label] for label in labels])
        # min_df above the corpus size would leave no vocabulary on a tiny training set
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        self.vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            min_df=min_df,
            max_features=self.max_features,
            token_pattern=TOKEN_PATTERN,
        )
        x = self.vectorizer.fit_transform(texts)
        match self.kind:
            case "logistic":
                from sklearn.linear_model import LogisticRegression

                self.model = LogisticRegression(C=10.0, max_iter=2000, random_state=self.seed)
            case "xgboost":
                from xgboost import XGBClassifier

                self.model = XGBClassifier(
                    n_estimators=300,
                    max_depth=6,
                    learning_rate=0.1,
                    tree_method="hist",
                    n_jobs=1,
                    random_state=self.seed,
                )
            case _:
                raise ValueError(f"unknown classifier {self.kind!r} (known: {', '.join(KINDS)})")
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

    def features(self, texts: list[str]):
        return self.vectorizer.transform(texts)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(posts, classes) probabilities, columns in `classes` order."""
        proba = np.zeros((len(texts), len(self.classes)))
        if texts:
            proba[:, self._columns] = self.model.predict_proba(self.features(texts))
        return proba

    def predict(self, texts: list[str]) -> np.ndarray:
        """Class indices into `classes`."""
        return self.predict_proba(texts).argmax(axis=1)

    def vocabulary(self) -> np.ndarray:
        return self.vectorizer.get_feature_names_out()


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    return float(
        f1_score(truth, predicted, labels=list(range(n_classes)), average="macro", zero_division=0)
    )


def per_class_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    return f1_score(
        truth, predicted, labels=list(range(n_classes)), average=None, zero_division=0
    ).astype(float)


def is_cue_word(word: str) -> bool:
    """Words worth putting in a prompt: not a stop word, not a number."""
    return word not in ENGLISH_STOP_WORDS and not word.isdigit()
