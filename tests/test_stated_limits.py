"""Rate limits learned from the providers' headers: parsed as each provider sends them, the
governor sized to them below the configured ceiling, and the real SDKs carry them from the wire."""

from __future__ import annotations

import pytest

from mpsynth.config import GeneratorConfig
from mpsynth.config.generation import CircuitBreakerConfig, RateLimitConfig
from mpsynth.generation.pricing import Price
from mpsynth.generation.ratelimit import HEADROOM, RateGovernor
from mpsynth.providers.limits import StatedLimits, stated_limits
from mpsynth.testing import FakeProviderServer
from tests.conftest import generation_request, run_engine


def test_each_providers_headers_parse():
    openai = {"X-RateLimit-Limit-Requests": "500", "x-ratelimit-limit-tokens": "30000"}
    assert stated_limits(openai) == StatedLimits(500.0, 30000.0)
    anthropic = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-tokens-limit": "8000",
    }
    assert stated_limits(anthropic) == StatedLimits(50.0, 8000.0)
    assert not stated_limits({"x-ratelimit-limit-requests": "soon", "date": "x"})
    assert not stated_limits(None) and not stated_limits({"x-ratelimit-limit-requests": "0"})


@pytest.mark.parametrize(
    ("configured", "stated", "expected"),
    [(1200, 600, 600 * HEADROOM), (None, 600, 600 * HEADROOM), (300, 600, 300)],
)
def test_the_governor_takes_the_stated_limit_below_its_ceiling(configured, stated, expected):
    governor = RateGovernor(
        RateLimitConfig(requests_per_minute=configured, tokens_per_minute=10_000),
        CircuitBreakerConfig(),
    )
    governor.settle(100, 10, 10, 0.0, limits=StatedLimits(requests_per_minute=stated))
    assert governor.requests.per_minute == pytest.approx(expected)
    assert governor.tokens.per_minute == 10_000  # not stated: as configured
    governor.settle(100, 10, 10, 0.0, limits=StatedLimits(tokens_per_minute=50_000))
    assert governor.tokens.per_minute == 10_000  # stated above the ceiling: the ceiling holds


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_the_sdks_bring_the_stated_limit_to_the_governor(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "test-key")
    with FakeProviderServer(api_key="test-key", requests_per_minute=600) as server:
        url = server.base_url if kind == "openai" else server.root_url
        generator = GeneratorConfig.model_validate(
            {
                "name": "g",
                "provider": {
                    "kind": kind,
                    "model": "m",
                    "base_url": url,
                    "api_key_env": "MPSYNTH_KEY",
                },
                "rate": {"requests_per_minute": 1200},
            }
        )
        request = generation_request(
            1,
            messages=[{"role": "user", "content": "Write 1 post for twitter."}],
            temperature=0.7,
            max_tokens=100,
        )
        *_, governor = run_engine(generator, [request], tmp_path, Price(1.0, 1.0))
    if kind == "gemini":  # Gemini states no limits: the configured rate stands
        assert governor.requests.per_minute == 1200
        assert governor.stats.learned_requests_per_minute is None
    else:
        assert governor.requests.per_minute == pytest.approx(600 * HEADROOM)
        assert governor.stats.learned_requests_per_minute == pytest.approx(600 * HEADROOM)


def test_a_stated_limit_replaces_the_slow_down_429s_caused():
    governor = RateGovernor(RateLimitConfig(requests_per_minute=1200), CircuitBreakerConfig())
    governor.failed(1, 429, 0.1)  # the configured rate overshot: the rate is cut
    assert governor.multiplier < 1.0
    governor.settle(1, 1, 0, 0.0, limits=StatedLimits(requests_per_minute=600))
    assert governor.multiplier == 1.0 and governor.requests.per_minute == 600 * HEADROOM


def test_429s_of_requests_sent_before_the_limit_was_learned_do_not_cut_it():
    now = [0.0]
    governor = RateGovernor(
        RateLimitConfig(requests_per_minute=1200), CircuitBreakerConfig(), clock=lambda: now[0]
    )
    governor.settle(1, 1, 0, 0.0, limits=StatedLimits(requests_per_minute=600))
    governor.failed(1, 429, 0.1)  # a request of the first burst
    assert governor.multiplier == 1.0 and governor.paused_until == 0.1  # paused, not slowed
    now[0] = 5.0
    governor.failed(1, 429, 0.1)  # the stated limit itself is exceeded: slow down
    assert governor.multiplier < 1.0
