"""sentence-transformers models by hub name or local path; CUDA with fp16/bf16 when present.

SentenceTransformer.encode sorts each call's texts by length before batching (and restores the
order), so padding stays small without sorting here.
"""

from __future__ import annotations

import numpy as np

from mpsynth.config import SentenceTransformersEmbedderConfig
from mpsynth.errors import InputError, MissingDependencyError


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError(
            "embed.embedder.device=cuda but PyTorch sees no CUDA device",
            "run on a GPU node, or set embed.embedder.device=auto",
        )
    return requested


class SentenceTransformersEmbedder:
    def __init__(self, config: SentenceTransformersEmbedderConfig) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.config = config
        device = resolve_device(config.device)
        try:
            self.model = SentenceTransformer(config.model, device=device)
        except OSError as error:  # not a local path, and the hub is offline or lacks it
            raise InputError(
                f"embed.embedder.model={config.model!r}: cannot load: {error}"
            ) from None
        if device == "cuda" and config.precision != "fp32":
            self.model.to({"fp16": torch.float16, "bf16": torch.bfloat16}[config.precision])
        if config.max_seq_length is not None:
            self.model.max_seq_length = config.max_seq_length
        self.device = device

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.config.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
