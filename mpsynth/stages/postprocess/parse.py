"""Postprocess: parse each completion's JSON into synthetic posts with full provenance, keep only
posts for the platforms the request asked for, drop exact duplicates, and record every rejection."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from mpsynth.core import schema
from mpsynth.core.platforms import normalise_platform
from mpsynth.providers.output import OutputFormatError, parse_posts


@dataclass
class PostprocessResult:
    datasets: dict[str, pa.Table]  # dataset name -> generated posts
    rejected: pa.Table
    counts: dict[str, int]


def dataset_name(generator: str, strategy: str) -> str:
    return f"{generator}-{strategy}"


def postprocess(requests: pa.Table, completions: pa.Table) -> PostprocessResult:
    by_request = {row["request_id"]: row for row in completions.to_pylist()}
    posts: dict[str, dict[str, list]] = defaultdict(
        lambda: {name: [] for name in schema.GENERATED_POSTS.names}
    )
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    rejected: dict[str, list] = {name: [] for name in schema.REJECTED_OUTPUTS.names}
    counts = defaultdict(int)

    def reject(request_id: str, reason: str, raw: str | None) -> None:
        rejected["request_id"].append(request_id)
        rejected["reason"].append(reason)
        rejected["raw"].append(raw)
        counts[f"rejected: {reason.split(':')[0]}"] += 1

    for request in requests.to_pylist():
        rid = request["request_id"]
        completion = by_request.get(rid)
        if completion is None:
            reject(rid, "no completion", None)
            continue
        if completion["status"] != "ok":
            reject(rid, f"request failed: {completion['error']}", completion["text"])
            continue
        try:
            items = parse_posts(completion["text"])
        except OutputFormatError as error:
            reject(rid, f"unparseable output: {error}", completion["text"])
            continue
        name = dataset_name(request["generator"], request["strategy"])
        targets = set(request["target_platforms"])
        for index, item in enumerate(items):
            raw_item = json.dumps(item, ensure_ascii=False)
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                reject(rid, "item without text", raw_item)
                continue
            platform = normalise_platform(str(item.get("platform") or ""))
            text = item["text"]
            if platform not in targets:
                reject(rid, f"platform not requested: {item.get('platform')!r}", raw_item)
            elif not text.strip():
                reject(rid, "empty text", raw_item)
            elif (platform, text) in seen[name]:
                reject(rid, "duplicate text", raw_item)
            else:
                seen[name].add((platform, text))
                table = posts[name]
                table["id"].append(f"{rid[:16]}-{index}")
                table["platform"].append(platform)
                table["text"].append(text)
                table["strategy"].append(request["strategy"])
                table["topic"].append(request["topic"])
                table["request_id"].append(rid)
                table["generator"].append(request["generator"])
                table["provider"].append(completion["provider"])
                table["model"].append(completion["model"])
                table["example_ids"].append(request["example_ids"])
                table["seed"].append(request["seed"])
                table["label"].append(request.get("label"))
                counts[f"kept: {name}"] += 1
    return PostprocessResult(
        datasets={
            name: pa.Table.from_pydict(cols, schema=schema.GENERATED_POSTS)
            for name, cols in sorted(posts.items())
        },
        rejected=pa.Table.from_pydict(rejected, schema=schema.REJECTED_OUTPUTS),
        counts=dict(counts),
    )
