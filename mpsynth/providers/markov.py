"""The offline baseline: a word n-gram Markov chain trained on real posts, answering in the same JSON
the LLM providers are asked for.

- Topic requests (mptm, per_platform): a chain over the real posts of the request's topic and
  target platform (the whole platform when the topic holds too few). It does not read the prompt:
  what a pool's examples are changes nothing, unless `example_weight` makes the prompt's examples
  count (each of their transitions that many times over the topic's), a stand-in that reads its
  prompt, for tests of what pools show (entity enrichment, examples per prompt).
- Labelled requests: only the run's seed posts train (never the test split).
  shap_guided: a chain over the seed posts of the requested class (of order 1 when the class has
  fewer than 100 seed posts), steered toward the prompt's cue words (each transition to a cue word
  weighs `cue_boost` times its count).
  naive: the prompt names the class and nothing else, so the chain is the whole seed, every class
  mixed, steered only toward words that start like the class name ("optim" for optimism). An LLM
  knows what a class name means and this stand-in knows only the word: naive Markov output is a
  lower bound for naive LLM output, while shap_guided Markov output resembles resampled seed posts
  of the class (on-label and in the corpus's words, but no new content).

Written here rather than taken from markovify, which samples from the global `random` module: with
many requests in flight, per-request seeds would not give reproducible posts.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from functools import partial

import numpy as np
import pyarrow.parquet as pq

from mpsynth.config.generation import MarkovProviderConfig
from mpsynth.providers import Completion, GenerationRequest, RealCorpus

BEGIN, END = "\x02", "\x03"
MAX_TRIES = 10
SMALL_CLASS = 100  # seed posts below which a class's chain is of order 1
_EDGE_PUNCTUATION = re.compile(r"^\W+|\W+$")


def bare(word: str) -> str:
    """A word as cue lists spell it: lower case, no punctuation at its edges."""
    return _EDGE_PUNCTUATION.sub("", word.lower())


def _starts_with(stem: str, word: str) -> bool:
    return bool(stem) and word.startswith(stem)


class Steering:
    """Transition weights of one chain with chosen words made `factor` times likelier."""

    def __init__(self, wanted, factor: float) -> None:
        self.wanted = wanted  # a predicate on bare words
        self.factor = factor
        self._cumulative: dict[tuple[str, ...], np.ndarray] = {}

    def cumulative(self, chain: MarkovChain, state: tuple[str, ...]) -> np.ndarray:
        if state not in self._cumulative:
            choices, counts, _ = chain.transitions(state)
            boost = np.array([self.factor if self.wanted(bare(w)) else 1.0 for w in choices])
            self._cumulative[state] = np.cumsum(counts * boost)
        return self._cumulative[state]


class MarkovChain:
    def __init__(self, posts: list[str], order: int) -> None:
        self.order = order
        self._counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for post in posts:
            words = [BEGIN] * order + post.split() + [END]
            for i in range(order, len(words)):
                self._counts[tuple(words[i - order : i])][words[i]] += 1
        # a state's arrays are built when a walk first reaches it: most states never are
        self._transitions: dict[tuple[str, ...], tuple[list[str], np.ndarray, np.ndarray]] = {}
        self.training = {" ".join(post.split()) for post in posts}

    def transitions_counts(self, state: tuple[str, ...]) -> Counter:
        """The next words from a state and their counts (empty: the chain never saw it)."""
        return self._counts.get(state, Counter())

    def transitions(self, state: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(next words, their counts, the counts' running sum) from a state."""
        found = self._transitions.get(state)
        if found is None:
            following = self._counts[state]
            counts = np.fromiter(following.values(), dtype=np.float64, count=len(following))
            found = (list(following), counts, np.cumsum(counts))
            self._transitions[state] = found
        return found

    def sample(
        self, rng: np.random.Generator, max_words: int, steering: Steering | None = None
    ) -> str:
        """A new post; re-drawn (a few times) when it reproduces a training post verbatim."""
        text = ""
        for _ in range(MAX_TRIES):
            state, words = (BEGIN,) * self.order, []
            while len(words) < max_words:
                choices, _, cumulative = self.transitions(state)
                if steering is not None:
                    cumulative = steering.cumulative(self, state)
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


class WeightedChain(MarkovChain):
    """A topic's chain with the prompt's own examples counted `weight` times on top."""

    def __init__(self, base: MarkovChain, examples: list[str], weight: float) -> None:
        self.order = base.order
        self._base = base
        self._extra = MarkovChain(examples, base.order)
        self._weight = weight
        self._transitions = {}
        self.training = base.training | self._extra.training

    def transitions(self, state: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
        found = self._transitions.get(state)
        if found is None:
            merged = Counter(self._base.transitions_counts(state))
            for word, count in self._extra.transitions_counts(state).items():
                merged[word] += count * self._weight
            counts = np.fromiter(merged.values(), dtype=np.float64, count=len(merged))
            found = (list(merged), counts, np.cumsum(counts))
            self._transitions[state] = found
        return found


class MarkovProvider:
    kind = "markov"

    def __init__(
        self,
        config: MarkovProviderConfig,
        texts: list[str],
        platforms: list[str],
        topics: list[int],
        ids: list[str] | None = None,
    ) -> None:
        self.config = config
        self.model = config.model
        # the prompt's examples by id, kept only when they train the chain
        self._text_of = (
            dict(zip(ids, texts, strict=True)) if ids is not None and config.example_weight else {}
        )
        self._by_topic_platform: dict[tuple[int, str], list[str]] = defaultdict(list)
        self._by_platform: dict[str, list[str]] = defaultdict(list)
        for text, platform, topic in zip(texts, platforms, topics, strict=True):
            self._by_topic_platform[(topic, platform)].append(text)
            self._by_platform[platform].append(text)
        self._chains: dict[tuple[int | None, str], MarkovChain] = {}
        self._by_label: dict[str, list[str]] = defaultdict(list)
        self._label_chains: dict[str | None, MarkovChain] = {}
        self._steering: dict[tuple, Steering] = {}

    def learn_labels(self, texts: list[str], labels: list[str]) -> None:
        """The seed posts of a labelled run, by class."""
        for text, label in zip(texts, labels, strict=True):
            self._by_label[label].append(text)

    @classmethod
    def from_corpus(cls, config: MarkovProviderConfig, corpus: RealCorpus) -> MarkovProvider:
        posts = pq.read_table(corpus.posts, columns=["id", "platform", "text"])
        topic_of = {}
        if corpus.assignments is not None:
            assignments = pq.read_table(corpus.assignments, columns=["id", "topic"])
            topic_of = dict(
                zip(assignments["id"].to_pylist(), assignments["topic"].to_pylist(), strict=True)
            )
        provider = cls(
            config,
            posts["text"].to_pylist(),
            posts["platform"].to_pylist(),
            [topic_of.get(i, -1) for i in posts["id"].to_pylist()],
            posts["id"].to_pylist(),
        )
        if corpus.labels is not None:
            seed = pq.read_table(
                corpus.labels, columns=["id", "label"], filters=[("split", "=", "seed")]
            )
            text_of = dict(zip(posts["id"].to_pylist(), posts["text"].to_pylist(), strict=True))
            provider.learn_labels(
                [text_of[i] for i in seed["id"].to_pylist()], seed["label"].to_pylist()
            )
        return provider

    def label_chain(self, label: str | None) -> MarkovChain:
        """The chain of a class's seed posts; None: every seed post, all classes mixed."""
        if label not in self._label_chains:
            posts = (
                self._by_label.get(label, [])
                if label is not None
                else [t for texts in self._by_label.values() for t in texts]
            )
            if not posts:
                raise ValueError(f"no seed posts of class {label!r} to learn from")
            # a higher order on a few dozen posts mostly replays them: drop to words in pairs
            order = self.config.order if len(posts) >= SMALL_CLASS else 1
            self._label_chains[label] = MarkovChain(posts, order)
        return self._label_chains[label]

    def labelled_sample(self, request: GenerationRequest, rng: np.random.Generator) -> str:
        if request.strategy == "naive":
            chain = self.label_chain(None)
            stem = bare(request.label or "")[:5]
            key = ("naive", request.label)
            wanted = partial(_starts_with, stem)
        else:
            chain = self.label_chain(request.label)
            key = ("cues", request.label, request.cues)
            cues = frozenset(request.cues)
            wanted = cues.__contains__
        if key not in self._steering:
            self._steering[key] = Steering(wanted, self.config.cue_boost)
        return chain.sample(rng, self.config.max_words, self._steering[key])

    def chain(self, topic: int | None, platform: str) -> MarkovChain:
        """The chain for a topic on a platform; the whole platform when that topic holds too few
        of its posts to learn from (and for per-platform requests, which have no topic)."""
        posts = self._by_topic_platform.get((topic, platform), []) if topic is not None else []
        # one chain per platform serves every topic too small to learn from
        key = (
            (topic, platform) if len(posts) >= self.config.min_training_posts else (None, platform)
        )
        if key not in self._chains:
            posts = posts if key[0] is not None else self._by_platform.get(platform, [])
            if not posts:
                raise ValueError(f"no real posts of platform {platform!r} to learn from")
            self._chains[key] = MarkovChain(posts, self.config.order)
        return self._chains[key]

    def topic_chain(self, request: GenerationRequest, platform: str) -> MarkovChain:
        """The topic's chain, with the prompt's examples on top when `example_weight` says so."""
        chain = self.chain(request.topic, platform)
        examples = [self._text_of[i] for i in request.example_ids if i in self._text_of]
        if not examples:
            return chain
        return WeightedChain(chain, examples, self.config.example_weight)

    async def complete(self, request: GenerationRequest) -> Completion:
        rng = np.random.default_rng(request.seed)
        posts = [
            {
                "platform": platform,
                "text": self.labelled_sample(request, rng)
                if request.label is not None
                else self.topic_chain(request, platform).sample(rng, self.config.max_words),
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
