"""The offline baseline: a word n-gram Markov chain trained on the real posts of the request's topic
and target platform, answering in the same JSON the LLM providers are asked for.

Written here rather than taken from markovify, which samples from the global `random` module: with
many requests in flight, per-request seeds would not give reproducible posts.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pyarrow.parquet as pq

from mpsynth.config import MarkovProviderConfig
from mpsynth.providers import Completion, GenerationRequest, RealCorpus

BEGIN, END = "\x02", "\x03"
MAX_TRIES = 10


class MarkovChain:
    def __init__(self, posts: list[str], order: int) -> None:
        self.order = order
        counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for post in posts:
            words = [BEGIN] * order + post.split() + [END]
            for i in range(order, len(words)):
                counts[tuple(words[i - order : i])][words[i]] += 1
        self.transitions = {
            state: (list(c), np.cumsum(list(c.values()), dtype=np.float64))
            for state, c in counts.items()
        }
        self.training = {" ".join(post.split()) for post in posts}

    def sample(self, rng: np.random.Generator, max_words: int) -> str:
        """A new post; re-drawn (a few times) when it reproduces a training post verbatim."""
        text = ""
        for _ in range(MAX_TRIES):
            state, words = (BEGIN,) * self.order, []
            while len(words) < max_words:
                choices, cumulative = self.transitions[state]
                word = choices[
                    int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right"))
                ]
                if word == END:
                    break
                words.append(word)
                state = (*state[1:], word)
            text = " ".join(words)
            if text and text not in self.training:
                return text
        return text


class MarkovProvider:
    kind = "markov"

    def __init__(
        self,
        config: MarkovProviderConfig,
        texts: list[str],
        platforms: list[str],
        topics: list[int],
    ) -> None:
        self.config = config
        self.model = config.model
        self._by_topic_platform: dict[tuple[int, str], list[str]] = defaultdict(list)
        self._by_platform: dict[str, list[str]] = defaultdict(list)
        for text, platform, topic in zip(texts, platforms, topics, strict=True):
            self._by_topic_platform[(topic, platform)].append(text)
            self._by_platform[platform].append(text)
        self._chains: dict[tuple[int | None, str], MarkovChain] = {}

    @classmethod
    def from_corpus(cls, config: MarkovProviderConfig, corpus: RealCorpus) -> MarkovProvider:
        posts = pq.read_table(corpus.posts, columns=["id", "platform", "text"])
        assignments = pq.read_table(corpus.assignments, columns=["id", "topic"])
        topic_of = dict(
            zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
        )
        return cls(
            config,
            posts["text"].to_pylist(),
            posts["platform"].to_pylist(),
            [topic_of.get(i, -1) for i in posts["id"].to_pylist()],
        )

    def chain(self, topic: int | None, platform: str) -> MarkovChain:
        """The chain for a topic on a platform; the whole platform when that topic holds too few
        of its posts to learn from (and for per-platform requests, which have no topic)."""
        key = (topic, platform)
        if key not in self._chains:
            posts = self._by_topic_platform.get(key, []) if topic is not None else []
            if len(posts) < self.config.min_training_posts:
                posts = self._by_platform.get(platform, [])
            if not posts:
                raise ValueError(f"no real posts of platform {platform!r} to learn from")
            self._chains[key] = MarkovChain(posts, self.config.order)
        return self._chains[key]

    async def complete(self, request: GenerationRequest) -> Completion:
        rng = np.random.default_rng(request.seed)
        posts = [
            {
                "platform": platform,
                "text": self.chain(request.topic, platform).sample(rng, self.config.max_words),
            }
            for platform in request.target_platforms
            for _ in range(request.posts_per_platform)
        ]
        prompt_words = sum(len(m["content"].split()) for m in request.messages)
        return Completion(
            text=json.dumps({"posts": posts}, ensure_ascii=False),
            finish_reason="stop",
            prompt_tokens=prompt_words,
            completion_tokens=sum(len(p["text"].split()) for p in posts),
        )

    async def close(self) -> None:
        return None
