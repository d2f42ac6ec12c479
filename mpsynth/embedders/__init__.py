"""Embedding backends behind one small protocol: fit (when the method learns from the corpus),
save/load, and encode a batch of texts into L2-normalised float32 vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from mpsynth.config import LsaEmbedderConfig


class Embedder(Protocol):
    dimensions: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return a (len(texts), dimensions) float32 array of unit vectors."""
        ...


def fit_embedder(config: LsaEmbedderConfig, texts: list[str], seed: int, out_dir: Path) -> Path:
    """Fit the embedder on real texts when its method learns from them; save it; return its path."""
    match config.kind:
        case "lsa":
            from mpsynth.embedders.lsa import LsaEmbedder

            return LsaEmbedder.fit(texts, config, seed).save(out_dir / "lsa.joblib")


def load_embedder(config: LsaEmbedderConfig, path: Path) -> Embedder:
    match config.kind:
        case "lsa":
            from mpsynth.embedders.lsa import LsaEmbedder

            return LsaEmbedder.load(path)
