"""LSA embeddings: TF-IDF + truncated SVD fitted on the real corpus, so that synthetic posts can later
be embedded in exactly the same space."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from mpsynth.config import LsaEmbedderConfig
from mpsynth.core.errors import InputError


class LsaEmbedder:
    def __init__(self, vectorizer: TfidfVectorizer, svd: TruncatedSVD) -> None:
        self.vectorizer = vectorizer
        self.svd = svd

    @classmethod
    def fit(cls, texts: list[str], config: LsaEmbedderConfig, seed: int) -> LsaEmbedder:
        rng = np.random.default_rng(seed)
        if len(texts) > config.fit_sample:
            texts = [texts[i] for i in rng.choice(len(texts), config.fit_sample, replace=False)]
        vectorizer = TfidfVectorizer(
            max_features=config.max_features,
            min_df=min(config.min_df, max(1, len(texts) // 100)),
            sublinear_tf=True,
            strip_accents="unicode",
            ngram_range=(1, 2),
        )
        matrix = vectorizer.fit_transform(texts)
        if matrix.shape[1] <= config.dimensions:
            raise InputError(
                f"embed.embedder.dimensions={config.dimensions} needs a vocabulary larger than that, "
                f"but the corpus gives only {matrix.shape[1]} terms: lower the setting"
            )
        svd = TruncatedSVD(
            n_components=config.dimensions, random_state=seed, algorithm="randomized"
        )
        svd.fit(matrix)
        return cls(vectorizer, svd)

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.svd.transform(self.vectorizer.transform(texts))
        return normalize(vectors).astype(np.float32, copy=False)

    def save(self, path: Path) -> Path:
        joblib.dump({"vectorizer": self.vectorizer, "svd": self.svd}, path)
        return path

    @classmethod
    def load(cls, path: Path) -> LsaEmbedder:
        state = joblib.load(path)
        return cls(state["vectorizer"], state["svd"])
