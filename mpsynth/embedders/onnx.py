"""A sentence-transformers model run by ONNX Runtime on CPU, optionally with int8 weights: the fast
backend for corpora too large for PyTorch on CPU.

The model is exported once from the same local folder the PyTorch backend loads (the packaged
all-MiniLM-L6-v2 is hash-checked first), with PyTorch's ONNX exporter, and for `onnx-int8` its
linear layers' weights are quantised by ONNX Runtime's dynamic quantiser. The file is cached under
`$MPSYNTH_CACHE` (default ~/.cache/mpsynth), named by the weights' sha256, the backend and both
libraries' versions, and written under a temporary name then renamed, so workers exporting at once
never read half a file. Nothing is downloaded.

Tokenisation (the model's own fast tokenizer, batches sorted by token count so padding stays small) and pooling
(the model's mean or CLS pooling) follow sentence-transformers; vectors are L2-normalised.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import numpy as np

from mpsynth.config import SentenceTransformersEmbedderConfig
from mpsynth.core.errors import ConfigError, MissingDependencyError
from mpsynth.core.locations import cache_root
from mpsynth.embedders.sentence_transformers import load_sentence_transformer, weights_sha256

POOLING = ("mean", "cls")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxEmbedder:
    def __init__(self, config: SentenceTransformersEmbedderConfig) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependencyError(
                f"embedder backend {config.backend} needs ONNX Runtime", "pip install onnxruntime"
            ) from None
        import torch

        if config.device == "cuda":
            raise ConfigError(
                f"embedder backend {config.backend} runs on CPU: set device to auto or cpu, or "
                "backend to torch for CUDA"
            )
        model = load_sentence_transformer(config.model, "cpu")
        pooling = model[1].get_config_dict().get("pooling_mode") if len(model) > 1 else None
        if pooling not in POOLING:
            raise ConfigError(
                f"embedder {config.model}: pooling {pooling!r} is not supported by backend "
                f"{config.backend} (supported: {', '.join(POOLING)}); use backend torch"
            )
        self.pooling = pooling
        if not getattr(model.tokenizer, "is_fast", False) or not set(
            model.tokenizer.model_input_names
        ) <= set(INPUTS):
            raise ConfigError(
                f"embedder {config.model}: backend {config.backend} needs a fast tokenizer whose "
                f"inputs are among {', '.join(INPUTS)}; use backend torch"
            )
        # the fast tokenizer's Rust core: one call tokenises a whole batch, padding is done here
        self.tokenizer = copy.deepcopy(model.tokenizer.backend_tokenizer)
        self.tokenizer.enable_truncation(config.max_seq_length or model.max_seq_length)
        self.tokenizer.no_padding()
        self.pad_id = model.tokenizer.pad_token_id or 0
        self.batch_size = config.batch_size
        path = exported_model(model, config.model, quantise=config.backend == "onnx-int8")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # Ray's per-actor CPU share
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str]) -> np.ndarray:
        dimensions = self.session.get_outputs()[0].shape[-1]
        out = np.zeros((len(texts), dimensions), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encoded], kind="stable")  # little padding
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            feed = self._padded([encoded[i] for i in rows])
            hidden = self.session.run(None, feed)[0]
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = feed["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
        return out

    def _padded(self, encodings) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in encodings)
        arrays = {
            "input_ids": np.full((len(encodings), width), self.pad_id, dtype=np.int64),
            "attention_mask": np.zeros((len(encodings), width), dtype=np.int64),
            "token_type_ids": np.zeros((len(encodings), width), dtype=np.int64),
        }
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            arrays["input_ids"][row, :length] = encoding.ids
            arrays["attention_mask"][row, :length] = 1
            arrays["token_type_ids"][row, :length] = encoding.type_ids
        return {name: arrays[name] for name in self.inputs}


def exported_model(model, name: str, quantise: bool) -> Path:
    """The model's ONNX file (int8 weights when `quantise`), exported on first use and cached."""
    import onnxruntime
    import torch

    folder = Path(model[0].auto_model.name_or_path or name)
    key = "-".join(
        [
            weights_sha256(folder)[:16],
            "int8" if quantise else "fp32",
            f"torch{torch.__version__}",
            f"ort{onnxruntime.__version__}",
        ]
    )
    target = cache_root() / "onnx" / f"{key}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        exported = Path(scratch) / "model.onnx"
        _export(model, exported)
        if quantise:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantised = Path(scratch) / "model-int8.onnx"
            quantize_dynamic(exported, quantised, weight_type=QuantType.QInt8)
            exported = quantised
        os.replace(exported, target)
    return target


def _export(model, path: Path) -> None:
    import torch

    transformer = model[0].auto_model.eval()
    names = list(model.tokenizer.model_input_names)

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(names, inputs, strict=True))).last_hidden_state

    example = model.tokenizer(
        ["an example post", "a second, longer example post"], padding=True, return_tensors="pt"
    )
    axes = {"batch": 0, "tokens": 1}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(),
            tuple(example[n] for n in names),
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={
                n: {v: k for k, v in axes.items()} for n in [*names, "last_hidden_state"]
            },
            opset_version=17,
            dynamo=False,
        )
