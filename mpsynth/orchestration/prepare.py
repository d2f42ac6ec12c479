"""`mpsynth prepare`: once per install, the work a first run would otherwise spend its first minute
on, done ahead and kept for every later run:
- umap-learn's numba functions compiled by a small topic fit (numba keeps them beside umap-learn's
  sources, or under NUMBA_CACHE_DIR), so a run's first fit loads them instead of compiling;
- the ONNX file of each ONNX embedder the configs name, exported (and int8-quantised) into the
  cache under $MPSYNTH_CACHE.
`make install` runs it for the demo's config."""

from __future__ import annotations

import logging
import time

import numpy as np

from mpsynth.config import RunConfig, TopicsConfig

log = logging.getLogger(__name__)

WARM_POSTS = 400  # below UMAP_EXACT_BELOW: the exact-neighbour path every corpus under 4,096 takes


def compile_topic_fit(seed: int = 0) -> None:
    """One topic fit on random unit vectors and made-up words: the same calls, argument types and
    numba functions as a real fit (float32 vectors, cosine neighbours, the layout), compiled and kept."""
    from mpsynth.stages.topics import fit_topics

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((WARM_POSTS, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    words = np.array([f"word{i}" for i in range(200)])
    texts = [" ".join(rng.choice(words, 12)) for _ in range(WARM_POSTS)]
    fit_topics(texts, vectors, TopicsConfig(), seed)


def onnx_embedders(config: RunConfig) -> list:
    """The embedders of a run that ONNX Runtime runs (each needs its exported file)."""
    return [
        e
        for e in (config.embed.embedder, config.evaluate.embedder)
        if e is not None and e.kind == "sentence-transformers" and e.backend != "torch"
    ]


def prepare(configs: list[RunConfig]) -> None:
    from mpsynth.embedders import load_embedder

    started = time.monotonic()
    compile_topic_fit()
    log.info(
        "prepare: umap-learn's functions compiled and kept (%.0fs)", time.monotonic() - started
    )
    exported = set()
    for config in configs:
        for embedder in onnx_embedders(config):
            key = (embedder.model, embedder.backend)
            if key in exported:
                continue
            started = time.monotonic()
            load_embedder(embedder, None)  # exports into the cache, or finds it there
            exported.add(key)
            log.info(
                "prepare: %s (%s) ready (%.0fs)",
                embedder.model,
                embedder.backend,
                time.monotonic() - started,
            )
