"""The answer every provider is asked for: {"posts": [{"platform", "text"}, ...]}, its JSON schema
(for providers with structured output) and its parser."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class OutputFormatError(ValueError):
    pass


def posts_schema(target_platforms: list[str], posts_per_platform: int) -> dict[str, Any]:
    """A JSON schema allowing exactly the requested platforms and number of posts."""
    count = posts_per_platform * len(target_platforms)
    return {
        "type": "object",
        "properties": {
            "posts": {
                "type": "array",
                "minItems": count,
                "maxItems": count,
                "items": {
                    "type": "object",
                    "properties": {
                        "platform": {"type": "string", "enum": list(target_platforms)},
                        "text": {"type": "string"},
                    },
                    "required": ["platform", "text"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["posts"],
        "additionalProperties": False,
    }


def parse_posts(raw: str | None) -> list[Any]:
    """The list of items in a completion: {"posts": [...]} or a bare list, optionally inside a
    markdown code fence."""
    if raw is None:
        raise OutputFormatError("empty output")
    fenced = _FENCE.match(raw)
    try:
        payload = json.loads(fenced.group(1) if fenced else raw)
    except json.JSONDecodeError as error:
        raise OutputFormatError(f"not valid JSON: {error}") from None
    items = payload.get("posts") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise OutputFormatError('expected {"posts": [...]} or a JSON list')
    return items


REPAIR_PROMPT = (
    "Your reply could not be used: {error}. Reply again with only the JSON object, in the form "
    '{{"posts": [{{"platform": "<platform>", "text": "<post>"}}, ...]}}, and keep the posts short '
    "enough to finish."
)


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (about four characters per token), used to reserve rate-limit
    capacity and to price a run before it starts; the provider's own counts settle the bill."""
    return max(1, -(-len(text) // 4))
