"""Embedding backends behind one small protocol: encode a batch of texts into L2-normalised float32
vectors. A backend that learns from the corpus (LSA) is fitted once and saved with the run, so that
synthetic posts are later embedded in the same space."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # configs need pydantic; this module runs without it (benchmarks/gpu_check.py)
    from mpsynth.config import EmbedderConfig


class Embedder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray:
        """Return a (len(texts), dimensions) float32 array of unit vectors."""
        ...


def prepare_embedder(
    config: EmbedderConfig, texts: Callable[[], list[str]], seed: int, out_dir: Path
) -> Path | None:
    """Fit and save the embedder when its method learns from the real texts; return the saved
    state's path (None for pretrained backends, which need nothing from the corpus)."""
    match config.kind:
        case "lsa":
            from mpsynth.embedders.lsa import LsaEmbedder

            return LsaEmbedder.fit(texts(), config, seed).save(state_path(config, out_dir))
        case "sentence-transformers" | "openai":
            return None


def state_path(config: EmbedderConfig, out_dir: Path) -> Path | None:
    """Where a fitted embedder's state lives in the embed stage's folder (None: nothing fitted)."""
    return Path(out_dir) / "lsa.joblib" if config.kind == "lsa" else None


def uses_gpu(config: EmbedderConfig) -> bool:
    """Whether the embedder runs on a GPU when the cluster has one."""
    return config.kind == "sentence-transformers" and config.backend == "torch"


def load_embedder(config: EmbedderConfig, state: Path | None) -> Embedder:
    match config.kind:
        case "lsa":
            from mpsynth.embedders.lsa import LsaEmbedder

            assert state is not None, "the LSA embedder is fitted before it is loaded"
            return LsaEmbedder.load(state)
        case "sentence-transformers" if config.backend != "torch":
            from mpsynth.embedders.onnx import OnnxEmbedder

            return OnnxEmbedder(config)
        case "sentence-transformers":
            from mpsynth.embedders.sentence_transformers import SentenceTransformersEmbedder

            return SentenceTransformersEmbedder(config)
        case "openai":
            from mpsynth.embedders.openai import OpenAIEmbedder

            return OpenAIEmbedder(config)
