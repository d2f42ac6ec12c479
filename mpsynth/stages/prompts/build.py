"""Prompts: turn each sample pool into a generation request (chat messages plus everything that shapes
the response), identified by a hash of exactly those things."""

from __future__ import annotations

import json
from importlib import resources
from string import Template

import pyarrow as pa

from mpsynth.config import GeneratorConfig, PromptsConfig
from mpsynth.core import schema
from mpsynth.core.errors import ConfigError
from mpsynth.core.fingerprint import fingerprint
from mpsynth.stages.prompts.guard import Pseudonymiser, guard_applies

SEPARATOR = "\n---\n"


def load_template(strategy: str, config: PromptsConfig) -> tuple[Template, Template]:
    """(system, user) templates for a strategy: the config's file if given, else the packaged one."""
    override = config.templates.get(strategy)
    if override is not None:
        if not override.is_file():
            raise ConfigError(f"prompts.templates.{strategy}: file not found: {override}")
        text = override.read_text(encoding="utf-8")
        source = str(override)
    else:
        text = resources.files("mpsynth.templates").joinpath(f"{strategy}.txt").read_text("utf-8")
        source = f"packaged template {strategy}.txt"
    if SEPARATOR not in text:
        raise ConfigError(f"{source}: the system and user parts must be separated by a '---' line")
    system, user = text.split(SEPARATOR, 1)
    return Template(system.strip()), Template(user.strip())


def format_examples(examples: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"[{platform}] {text}" for platform, text in examples)


def generation_params(generator: GeneratorConfig) -> dict:
    return {"temperature": generator.temperature, "max_tokens": generator.max_tokens}


def provider_identity(generator: GeneratorConfig) -> dict:
    """Everything about the backend that can change an answer (not the key, which is a secret)."""
    return generator.provider.model_dump(mode="json", exclude={"api_key_env"})


def request_id(provider: dict, params: dict, messages: list[dict], seed: int) -> str:
    return fingerprint(
        {"provider": provider, "params": params, "messages": messages, "seed": seed}
    )[:32]


def label_text(label: str, descriptions: dict[str, str]) -> str:
    """A class as prompts name it; a multi-label run's combination as its classes, joined."""
    if label in descriptions or schema.LABEL_JOIN not in label:
        return descriptions.get(label, label)
    return " and ".join(descriptions.get(c, c) for c in label.split(schema.LABEL_JOIN))


def build_messages(
    pool: dict,
    templates: dict,
    examples: list[tuple[str, str]],
    posts_per_platform: int,
    descriptions: dict[str, str] | None = None,
) -> list[dict]:
    system, user = templates[pool["strategy"]]
    values = {
        "n_examples": len(examples),
        "platform_list": ", ".join(sorted({p for p, _ in examples})),
        "examples": format_examples(examples),
        "posts_per_platform": posts_per_platform,
        "target_list": ", ".join(pool["target_platforms"]),
        # a labelled run's class, as the prompt names it ("overtly aggressive" for OAG)
        "label": label_text(pool.get("label") or "", descriptions or {}),
        "cues": ", ".join(pool.get("cues") or []),
    }
    return [
        {"role": "system", "content": system.safe_substitute(values)},
        {"role": "user", "content": user.safe_substitute(values)},
    ]


def build_requests(
    pools: pa.Table,
    posts: pa.Table,
    prompts: PromptsConfig,
    generators: list[GeneratorConfig],
    descriptions: dict[str, str] | None = None,
    guard: Pseudonymiser | None = None,
    cue_posts: pa.Table | None = None,
) -> pa.Table:
    """One request per pool and generator; `descriptions` names a labelled run's classes. With a
    `guard`, everything from the data that a prompt for a generator `prompts.privacy_guard`
    covers shows is pseudonymised: the examples, the class's name and its cue words (a cue word
    that names someone becomes its identifier's placeholder, judged on `cue_posts`, the posts the
    cues came from: `posts` unless given)."""
    text_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
    )
    platform_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("platform").to_pylist(), strict=True)
    )
    templates = {s: load_template(s, prompts) for s in set(pools.column("strategy").to_pylist())}
    pool_rows = pools.to_pylist()
    guarded = guard is not None and any(
        guard_applies(prompts.privacy_guard, g.provider.kind) for g in generators
    )
    if guarded and "cues" in pools.column_names:
        words = [w for pool in pool_rows for w in pool.get("cues") or []]
        source = posts if cue_posts is None else cue_posts
        texts, platforms = source.column("text").to_pylist(), source.column("platform").to_pylist()
        guard.learn_cues(words, zip(texts, platforms, strict=True))
    rows: dict[str, list] = {name: [] for name in schema.GENERATION_REQUESTS.names}
    for generator in generators:
        params = generation_params(generator)
        params_json = json.dumps(params, sort_keys=True)
        identity = provider_identity(generator)
        masked = guard is not None and guard_applies(prompts.privacy_guard, generator.provider.kind)
        for pool in pool_rows:
            examples = [
                (platform_of[i], guard(text_of[i], platform_of[i]) if masked else text_of[i])
                for i in pool["example_ids"]
            ]
            shown = pool
            if masked:
                label = label_text(pool.get("label") or "", descriptions or {})
                shown = {**pool, "label": guard(label), "cues": guard.cues(pool.get("cues") or [])}
            messages = build_messages(
                shown, templates, examples, prompts.posts_per_platform, descriptions
            )
            rows["request_id"].append(request_id(identity, params, messages, pool["seed"]))
            rows["generator"].append(generator.name)
            rows["pool_id"].append(pool["pool_id"])
            rows["strategy"].append(pool["strategy"])
            rows["topic"].append(pool["topic"])
            rows["target_platforms"].append(pool["target_platforms"])
            rows["posts_per_platform"].append(prompts.posts_per_platform)
            rows["example_ids"].append(pool["example_ids"])
            rows["messages"].append(messages)
            rows["provider"].append(generator.provider.kind)
            rows["model"].append(generator.provider.model)
            rows["params_json"].append(params_json)
            rows["seed"].append(pool["seed"])
            rows["label"].append(pool.get("label"))
            rows["cues"].append(pool.get("cues") or [])
    return pa.Table.from_pydict(rows, schema=schema.GENERATION_REQUESTS)
