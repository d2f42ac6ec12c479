"""The real SDK clients (openai, anthropic, google-genai) against the local fake server: every
injected fault ends in a correct result or a recorded failure, never a lost or doubled request."""

from __future__ import annotations

import json

import pytest

from mpsynth.config import GeneratorConfig
from mpsynth.core.errors import ConfigError
from mpsynth.generation.pricing import Price
from mpsynth.generation.ratelimit import CircuitOpen
from mpsynth.providers import FatalProviderError, GenerationRequest, build_provider
from mpsynth.testing import FakeProviderServer, Fault
from tests.conftest import first_per_platform, run_engine

KINDS = ("openai", "anthropic", "gemini")


@pytest.fixture(scope="module")
def requests(demo_rows):
    """Six requests whose prompts hold real posts."""
    rows = first_per_platform(demo_rows, 3)
    examples = "\n\n".join(f"[{r['platform']}] {r['text']}" for r in rows)
    return [
        GenerationRequest(
            request_id=f"req-{i}",
            generator="g",
            strategy="mptm",
            topic=i,
            target_platforms=["reddit", "twitter"],
            posts_per_platform=2,
            example_ids=[r["id"] for r in rows],
            messages=[
                {"role": "system", "content": "You write realistic social-media posts."},
                {
                    "role": "user",
                    "content": f"Examples {i}:\n{examples}\nWrite 2 new posts for each of these platforms: reddit, twitter.",
                },
            ],
            params={"temperature": 0.8, "max_tokens": 400},
            seed=i,
        )
        for i in range(6)
    ]


def _generator(kind, server, **overrides):
    url = server.base_url if kind == "openai" else server.root_url
    return GeneratorConfig.model_validate(
        {
            "name": "g",
            "provider": {
                "kind": kind,
                "model": "test-model",
                "base_url": url,
                "api_key_env": "MPSYNTH_KEY",
            },
            "retry": {
                "max_attempts": 4,
                "base_delay_s": 0.01,
                "max_delay_s": 0.05,
                "timeout_s": 1.0,
            },
            "circuit_breaker": {"failures": 50, "cooldown_s": 0.1},
            **overrides,
        }
    )


PRICE = Price(1.0, 2.0)


def _run(generator, requests, tmp_path, price=PRICE):
    return run_engine(generator, requests, tmp_path, price)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "test-key")


@pytest.mark.parametrize("kind", KINDS)
def test_every_fault_ends_in_a_correct_result(kind, requests, tmp_path):
    with FakeProviderServer(api_key="test-key") as server:
        server.inject(
            Fault(status=429, retry_after=0.05),
            Fault(status=500),
            Fault(delay_s=1.5),  # longer than the client's 1 s timeout
            Fault(
                content='{"posts": [{"platform": "reddit", "text": "unterminated'
            ),  # malformed output
            Fault(truncate=True),
            Fault(status=200, body="{this is not json"),  # a malformed HTTP body
        )
        # six requests in flight at once, so each fault lands on a different one (probing first
        # would send them one by one, and a repair could meet the next fault)
        generator = _generator(kind, server, rate={"probe_first": False})
        counts, ledger, governor = _run(generator, requests, tmp_path)
        # what the server answered, less the answer the client had stopped waiting for (a real
        # provider may still bill that one: no client can know)
        answered = [
            r for r in server.log.requests if "prompt_tokens" in r and r["fault_kind"] != "delay"
        ]
    rows = ledger.to_pylist()
    assert sorted(r["request_id"] for r in rows) == [f"req-{i}" for i in range(6)]  # each once
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    for row in rows:
        posts = json.loads(row["text"])["posts"]
        assert sorted(p["platform"] for p in posts) == ["reddit", "reddit", "twitter", "twitter"]
    assert counts["ok"] == 6 and counts["rate_limited"] == 1 and counts["repaired"] == 2
    assert counts["truncated"] == 1 and counts["parse_failures"] == 2
    # the ledger's tokens are exactly what the server answered with, and priced from them
    prompt = sum(r["prompt_tokens"] for r in answered)
    completion = sum(r["completion_tokens"] for r in answered)
    assert sum(r["prompt_tokens"] for r in rows) == prompt
    assert sum(r["completion_tokens"] for r in rows) == completion
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(
        (prompt * 1.0 + completion * 2.0) / 1e6
    )
    assert governor.stats.requests_done == 6


@pytest.mark.parametrize("kind", KINDS)
def test_structured_output_schema_reaches_the_wire(kind, requests, tmp_path):
    with FakeProviderServer(api_key="test-key") as server:
        _run(_generator(kind, server), requests[:1], tmp_path)
        body = server.log.requests[0]["body"]
    schema = {
        "openai": lambda b: b["response_format"]["json_schema"]["schema"],
        "anthropic": lambda b: b["output_config"]["format"]["schema"],
        "gemini": lambda b: b["generationConfig"]["responseJsonSchema"],
    }[kind](body)
    items = schema["properties"]["posts"]
    assert items["items"]["properties"]["platform"]["enum"] == ["reddit", "twitter"]
    assert items["minItems"] == items["maxItems"] == 4


@pytest.mark.parametrize("kind", KINDS)
def test_persistent_failures_are_recorded_not_lost(kind, requests, tmp_path):
    with FakeProviderServer(api_key="test-key") as server:
        server.inject(*[Fault(status=503)] * 4)
        exhausted, ledger_a, _ = _run(_generator(kind, server), requests[:1], tmp_path / "a")
        server.inject(*[Fault(content="no json at all")] * 2)
        unusable, ledger_b, _ = _run(_generator(kind, server), requests[1:2], tmp_path / "b")
    (gave_up,) = ledger_a.to_pylist()
    assert gave_up["status"] == "failed" and gave_up["attempts"] == 4
    assert gave_up["error"].startswith("gave up after 4 attempts: HTTP 503")
    (bad,) = ledger_b.to_pylist()
    assert bad["status"] == "failed" and bad["error"].startswith(
        "unusable output after a repair retry"
    )
    assert bad["text"] == "no json at all" and bad["attempts"] == 2  # the raw answer is kept
    assert exhausted["failed"] == unusable["failed"] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_auth_failure_stops_the_run_without_leaking_the_key(kind, requests, tmp_path, monkeypatch):
    monkeypatch.setenv("MPSYNTH_KEY", "sk-secret-value-123")
    with FakeProviderServer(api_key="test-key") as server:
        with pytest.raises(FatalProviderError) as error:
            _run(_generator(kind, server), requests, tmp_path)
        attempts = len(server.log.requests)
    assert "401" in str(error.value) and "sk-secret-value-123" not in str(error.value)
    assert attempts <= len(requests)  # no retries of a 401


def test_missing_key_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.delenv("MPSYNTH_KEY")
    with FakeProviderServer() as server, pytest.raises(ConfigError, match="MPSYNTH_KEY is not set"):
        build_provider(
            _generator("openai", server).provider, _generator("openai", server).retry, None
        )


@pytest.mark.parametrize("kind", ("openai", "anthropic"))
def test_unreachable_server_ends_with_the_url_and_the_connection_error(kind, requests, tmp_path):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    generator = GeneratorConfig.model_validate(
        {
            "name": "g",
            "provider": {"kind": kind, "model": "m", "base_url": url, "api_key_env": "MPSYNTH_KEY"},
            "retry": {"base_delay_s": 0.01, "max_delay_s": 0.02},
            "circuit_breaker": {"failures": 3, "cooldown_s": 0.2},
        }
    )
    with pytest.raises(CircuitOpen) as error:
        _run(generator, requests, tmp_path)
    message = str(error.value)
    assert f"last error from {url}" in message.replace(f"{url}/", url)
    assert "ConnectError" in message and "ConnectionRefusedError: [Errno 111]" in message
    assert "Traceback" not in message


def test_a_retry_after_of_hours_is_cut_to_the_cap_with_a_warning(requests, tmp_path, caplog):
    import time

    with FakeProviderServer(api_key="test-key") as server:
        server.inject(Fault(status=429, retry_after=7200))  # two hours
        generator = _generator(
            "openai", server, retry={"max_attempts": 3, "max_retry_after_s": 0.2, "timeout_s": 5}
        )
        started = time.perf_counter()
        with caplog.at_level("WARNING", logger="mpsynth.providers"):
            counts, ledger, _ = _run(generator, requests[:1], tmp_path)
        took = time.perf_counter() - started
    assert ledger.to_pylist()[0]["status"] == "ok" and counts["rate_limited"] == 1
    assert took < 30  # not two hours
    assert any(
        "asked to wait 7200 s (Retry-After); waiting 0.2 s instead" in r.getMessage()
        for r in caplog.records
    )
