"""Test helpers shipped with the package, for mpsynth's own tests and for users checking their set-up
offline: a tiny sentence-transformers model built from a corpus, and a local server that speaks the
OpenAI, Anthropic and Gemini wire formats with injectable faults."""

from __future__ import annotations

from mpsynth.testing.answers import Fault, hashed_embedding, scripted_posts
from mpsynth.testing.models import (
    build_tiny_ner_pipeline,
    build_tiny_sentence_transformer,
    build_tiny_sentiment_model,
)
from mpsynth.testing.server import FakeProviderServer

__all__ = [
    "FakeProviderServer",
    "Fault",
    "build_tiny_ner_pipeline",
    "build_tiny_sentence_transformer",
    "build_tiny_sentiment_model",
    "hashed_embedding",
    "scripted_posts",
]
