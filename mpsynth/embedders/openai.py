"""Embeddings from the OpenAI API (or any server speaking its wire format), batched.

The official SDK retries 429, 5xx, timeouts and dropped connections with exponential backoff and
honours Retry-After; errors it will not retry (auth, bad request) stop the run with the server's
message. The key comes only from the environment variable the config names.
"""

from __future__ import annotations

import os

import numpy as np

from mpsynth.config import OpenAIEmbedderConfig
from mpsynth.core.errors import ConfigError, ProviderError


class OpenAIEmbedder:
    def __init__(self, config: OpenAIEmbedderConfig) -> None:
        import openai

        key = os.environ.get(config.api_key_env)
        if not key:
            raise ConfigError(
                f"embed.embedder.api_key_env: the environment variable {config.api_key_env} is not set"
            )
        self.config = config
        self.client = openai.OpenAI(
            api_key=key,
            base_url=config.base_url,
            max_retries=config.max_retries,
            timeout=config.timeout_s,
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        import openai

        chunks = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = texts[start : start + self.config.batch_size]
            options = {"dimensions": self.config.dimensions} if self.config.dimensions else {}
            try:
                response = self.client.embeddings.create(
                    model=self.config.model, input=batch, encoding_format="float", **options
                )
            except openai.APIStatusError as error:
                raise ProviderError(
                    f"embeddings ({self.config.model}): HTTP {error.status_code}: {error.message}"
                ) from None
            except openai.APIConnectionError as error:
                raise ProviderError(f"embeddings ({self.config.model}): {error}") from None
            rows = sorted(response.data, key=lambda item: item.index)
            if len(rows) != len(batch):
                raise ProviderError(
                    f"embeddings ({self.config.model}): sent {len(batch)} texts, got {len(rows)} vectors"
                )
            chunks.append(np.asarray([row.embedding for row in rows], dtype=np.float32))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)
