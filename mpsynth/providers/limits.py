"""The rate limits a provider states in its response headers, so the governor can size itself to
the real limit instead of learning it from 429s.

OpenAI: x-ratelimit-limit-requests / -tokens (per minute), with -remaining-* and -reset-* ("1s",
"6m0s", "120ms"). Anthropic: anthropic-ratelimit-requests-limit / -tokens-limit (per minute; also
-input-tokens-limit and -output-tokens-limit), with -remaining and -reset (RFC 3339 times).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class StatedLimits:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None

    def __bool__(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


HEADERS = {
    "requests_per_minute": ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"),
    "tokens_per_minute": ("x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
}


def stated_limits(headers: Mapping[str, str] | None) -> StatedLimits:
    """The per-minute limits in a response's headers (None for those it does not state)."""
    if not headers:
        return StatedLimits()
    lowered = {k.lower(): v for k, v in headers.items()}
    found: dict[str, float | None] = {}
    for field, names in HEADERS.items():
        found[field] = None
        for name in names:
            try:
                value = float(lowered[name])
            except (KeyError, ValueError):
                continue
            if value > 0:
                found[field] = value
                break
    return StatedLimits(**found)
