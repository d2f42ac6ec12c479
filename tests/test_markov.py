from __future__ import annotations

import asyncio
import json

import numpy as np

from mpsynth.config.generation import MarkovProviderConfig
from mpsynth.providers import GenerationRequest
from mpsynth.providers.markov import BEGIN, MarkovChain, MarkovProvider
from tests.conftest import first_per_platform


def _request(**overrides) -> GenerationRequest:
    fields = dict(
        request_id="r1",
        generator="markov",
        strategy="mptm",
        topic=0,
        target_platforms=["reddit", "twitter"],
        posts_per_platform=2,
        example_ids=[],
        messages=[{"role": "user", "content": "write posts"}],
        params={},
        seed=11,
    )
    return GenerationRequest(**{**fields, **overrides})


def test_chain_emits_only_transitions_seen_in_training(demo_rows):
    posts = [r["text"] for r in demo_rows if r["platform"] == "twitter"][:300]
    chain = MarkovChain(posts, order=2)
    seen = set()
    for post in posts:
        words = [BEGIN, BEGIN, *post.split()]
        seen.update(zip(words, words[1:], words[2:], strict=False))
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = [BEGIN, BEGIN, *chain.sample(rng, 60).split()]
        assert set(zip(words, words[1:], words[2:], strict=False)) <= seen


def test_provider_answers_the_requested_json_deterministically(demo_rows):
    rows = first_per_platform(demo_rows, 100)
    provider = MarkovProvider(
        MarkovProviderConfig(min_training_posts=5),
        [r["text"] for r in rows],
        [r["platform"] for r in rows],
        [0] * len(rows),
    )
    first = asyncio.run(provider.complete(_request()))
    posts = json.loads(first.text)["posts"]
    assert [p["platform"] for p in posts] == ["reddit", "reddit", "twitter", "twitter"]
    assert all(p["text"] for p in posts)
    assert first.completion_tokens == sum(len(p["text"].split()) for p in posts)
    assert asyncio.run(provider.complete(_request())).text == first.text
    assert asyncio.run(provider.complete(_request(seed=12))).text != first.text


def test_small_topic_falls_back_to_the_whole_platform(demo_rows):
    rows = first_per_platform(demo_rows, 50)
    topics = [7 if i < 3 else 0 for i in range(len(rows))]
    provider = MarkovProvider(
        MarkovProviderConfig(min_training_posts=20),
        [r["text"] for r in rows],
        [r["platform"] for r in rows],
        topics,
    )
    platform = rows[0]["platform"]
    assert len(provider.chain(7, platform).training) > 3
    assert provider.chain(None, platform).training == provider.chain(7, platform).training


def _labelled_provider(rows, cue_boost=5.0) -> MarkovProvider:
    provider = MarkovProvider(
        MarkovProviderConfig(cue_boost=cue_boost),
        [r["text"] for r in rows],
        [r["platform"] for r in rows],
        [-1] * len(rows),
    )
    provider.learn_labels([r["text"] for r in rows], [r["label"] for r in rows])
    return provider


def _labelled_posts(provider, strategy, label, cues=(), seeds=range(40)) -> list[str]:
    posts = []
    for seed in seeds:
        request = _request(
            strategy=strategy,
            topic=None,
            target_platforms=["facebook"],
            posts_per_platform=5,
            label=label,
            cues=tuple(cues),
            seed=seed,
        )
        posts += [
            p["text"] for p in json.loads(asyncio.run(provider.complete(request)).text)["posts"]
        ]
    return posts


def _trac_seed():
    from tests.conftest import read_rows

    return [r for r in read_rows("trac1_aggression.csv") if r["split"] == "train"]


def test_shap_guided_posts_come_from_the_class_and_lean_on_its_cues():
    from mpsynth.providers.markov import bare

    rows = _trac_seed()
    oag_words = {w for r in rows if r["label"] == "OAG" for w in r["text"].split()}
    cues = ("pakistan", "muslims", "shame")
    steered = _labelled_posts(_labelled_provider(rows), "shap_guided", "OAG", cues)
    plain = _labelled_posts(_labelled_provider(rows, cue_boost=1.0), "shap_guided", "OAG", cues)
    assert all(set(p.split()) <= oag_words for p in steered)  # the class's own chain

    def cue_rate(posts):
        words = [bare(w) for p in posts for w in p.split()]
        return sum(w in cues for w in words) / len(words)

    assert cue_rate(steered) > 1.5 * cue_rate(plain) > 0


def test_naive_posts_mix_every_class():
    rows = _trac_seed()
    naive = _labelled_posts(_labelled_provider(rows), "naive", "OAG")
    only_elsewhere = {w for r in rows if r["label"] != "OAG" for w in r["text"].split()} - {
        w for r in rows if r["label"] == "OAG" for w in r["text"].split()
    }
    # words no OAG post holds: the naive chain draws on the whole seed
    assert sum(bool(set(p.split()) & only_elsewhere) for p in naive) > len(naive) / 4


def test_a_chain_that_reads_its_prompt_writes_the_examples_words_and_one_that_does_not_never():
    """example_weight: the prompt's examples train the chain on top of the topic's posts; at 0
    the same request gives the same posts whatever the examples are."""
    import asyncio
    import json

    from mpsynth.config.generation import MarkovProviderConfig

    rows = [r for r in demo_rows_of("twitter")][:200]
    texts = [r["text"] for r in rows]
    ids = [r["id"] for r in rows]
    examples = [f"x{i}" for i in range(3)]
    texts += [f"zqxword{i} {texts[i]}" for i in range(3)]  # a word of their own, then real words
    ids += examples
    topics = [0] * (len(texts) - 3) + [1] * 3  # the examples are of another topic

    def posts(weight: float, shown: list[str]) -> list[str]:
        provider = MarkovProvider(
            MarkovProviderConfig(example_weight=weight),
            texts,
            ["twitter"] * len(texts),
            topics,
            ids,
        )
        request = _request(target_platforms=["twitter"], posts_per_platform=20, example_ids=shown)
        answer = asyncio.run(provider.complete(request))
        return [p["text"] for p in json.loads(answer.text)["posts"]]

    unread = posts(0.0, examples)
    assert unread == posts(0.0, []) and "zqxword" not in " ".join(unread)
    read = posts(50.0, examples)
    assert sum("zqxword" in p for p in read) >= 5  # the examples' words, written again
    assert posts(50.0, []) == unread  # no examples shown: the topic's chain alone


def demo_rows_of(platform: str) -> list[dict]:
    from tests.conftest import read_rows

    return [r for r in read_rows("demo") if r["platform"] == platform]
