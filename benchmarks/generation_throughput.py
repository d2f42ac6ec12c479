"""Generation throughput through Ray actors against the local fake server (real OpenAI SDK, fixed
latency), as a share of the ceiling min(configured rate, actors * concurrency / latency); the share of
requests answered 429 when the server enforces a lower limit than configured; and `mpsynth estimate`
on the demo config against the tokens the server reports and the spend the run records, live and in
batch mode (`--demos-only` runs just the two demo runs).

    .venv/bin/python benchmarks/generation_throughput.py
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mpsynth.config import GeneratorConfig, RayConfig, load_config
from mpsynth.core import schema
from mpsynth.distributed.generation import run_generator
from mpsynth.distributed.session import ray_session
from mpsynth.generation.ledger import read_ledger
from mpsynth.generation.pricing import Price
from mpsynth.testing import FakeProviderServer

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "MPSYNTH_BENCH_KEY"


def demo_requests(n: int) -> pa.Table:
    """n requests whose prompts hold real demo posts (9 examples each, as MPTM prompts do)."""
    with (REPO / "data" / "demo" / "posts.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for i in range(n):
        examples = [rows[(i * 9 + k) % len(rows)] for k in range(9)]
        text = "\n\n".join(f"[{r['platform']}] {r['text']}" for r in examples)
        out.append(
            {
                "request_id": f"bench-{i:06d}",
                "generator": "bench",
                "pool_id": f"p{i}",
                "strategy": "mptm",
                "topic": 0,
                "target_platforms": ["reddit", "twitter"],
                "posts_per_platform": 3,
                "example_ids": [r["id"] for r in examples],
                "messages": [
                    {"role": "system", "content": "You write realistic social-media posts."},
                    {
                        "role": "user",
                        "content": f"{text}\n\nWrite 3 new posts for each of these platforms: reddit, twitter.",
                    },
                ],
                "provider": "openai",
                "model": "bench-model",
                "params_json": '{"max_tokens": 600, "temperature": 1.0}',
                "seed": i,
            }
        )
    return pa.Table.from_pylist(out, schema=schema.GENERATION_REQUESTS)


def scenario(
    name,
    server,
    requests,
    rpm,
    actors,
    concurrency,
    latency_s,
    ledger_dir,
    server_rpm=None,
    probe_first=True,
) -> dict:
    generator = GeneratorConfig.model_validate(
        {
            "name": "bench",
            "provider": {
                "kind": "openai",
                "model": "bench-model",
                "base_url": server.base_url,
                "api_key_env": KEY_ENV,
            },
            "actors": actors,
            "rate": {
                "requests_per_minute": rpm,
                "concurrency": concurrency,
                "probe_first": probe_first,
            },
            "retry": {"max_attempts": 10, "base_delay_s": 0.2, "timeout_s": 30},
        }
    )
    before = len(server.log.requests)
    run_generator(
        generator,
        requests,
        ledger_dir,
        None,
        Price(0.15, 0.60),
        None,
        RayConfig(),
        progress_interval_s=30.0,
    )
    entries = server.log.requests[before:]
    ledger = read_ledger(ledger_dir)
    first = min(e["received_at"] for e in entries)
    last = max(ledger["finished_at"].to_pylist())
    achieved = requests.num_rows / (last - first)
    ceiling = min(
        rpm / 60 if rpm else float("inf"),
        server_rpm / 60 if server_rpm else float("inf"),
        actors * concurrency / latency_s,
    )
    limited = sum(1 for e in entries if e["status"] == 429)
    return {
        "scenario": name,
        "requests": requests.num_rows,
        "ok": pc.sum(pc.equal(ledger["status"], "ok")).as_py(),
        "achieved": achieved,
        "ceiling": ceiling,
        "ratio": achieved / ceiling,
        "http_requests": len(entries),
        "answered_429": limited,
        "share_429": limited / requests.num_rows,
    }


def demo_estimate(server: FakeProviderServer, work: Path) -> None:
    """`mpsynth estimate` on the demo config with a generator on the fake server, then the run."""
    from mpsynth.orchestration.pipeline import estimate, run_pipeline

    provider = f"{{kind: openai, model: gpt-4o-mini, base_url: '{server.base_url}', api_key_env: {KEY_ENV}}}"
    generator = f"{{name: fake, provider: {provider}, actors: 2, rate: {{concurrency: 8}}}}"
    overrides = [f"run_dir={work / 'demo'}", f"generate.generators=[{generator}]"]
    config = load_config(REPO / "configs" / "demo.yaml", overrides)
    rows = estimate(config)
    before = server.log.usage.copy()
    manifest = run_pipeline(config)
    usage = server.log.usage - before
    row = rows[0]
    price = Price(0.15, 0.60)  # gpt-4o-mini's default list price
    print("\nmpsynth estimate on configs/demo.yaml (generator: gpt-4o-mini on the fake server)")
    print(
        f"  requests {row['requests']:,}; estimated prompt tokens {row['prompt_tokens']:,}, server counted "
        f"{usage['prompt_tokens']:,}"
    )
    print(
        f"  estimated completion tokens {row['expected_completion_tokens']:,} (max {row['max_completion_tokens']:,}), "
        f"server counted {usage['completion_tokens']:,}"
    )
    print(
        f"  estimated ${row['expected_usd']:.4f} (max ${row['max_usd']:.4f}); recorded spend "
        f"${manifest['stages']['generate']['rows']['spend_usd']:.4f}; server tokens x price "
        f"${price.cost(usage['prompt_tokens'], usage['completion_tokens']):.4f}"
    )


def demo_batch(server: FakeProviderServer, work: Path) -> None:
    """The demo with its generator in batch mode on the fake server: the spend the run records
    against the server's tokens at the live and the batch price."""
    from mpsynth.orchestration.pipeline import run_pipeline

    provider = f"{{kind: openai, model: gpt-4o-mini, base_url: '{server.base_url}', api_key_env: {KEY_ENV}}}"
    generator = f"{{name: fakebatch, provider: {provider}, mode: batch, batch: {{max_requests: 100, poll_interval_s: 0.5}}}}"
    overrides = [f"run_dir={work / 'demo-batch'}", f"generate.generators=[{generator}]"]
    config = load_config(REPO / "configs" / "demo.yaml", overrides)
    before = server.log.usage.copy()
    manifest = run_pipeline(config)
    usage = server.log.usage - before
    price = Price(0.15, 0.60)
    live = price.cost(usage["prompt_tokens"], usage["completion_tokens"])
    summary = json.loads((work / "demo-batch" / "generate" / "summary.json").read_text())
    this_run = summary["fakebatch"]["this_run"]
    recorded = manifest["stages"]["generate"]["rows"]["spend_usd"]
    print("\nbatch mode on configs/demo.yaml (gpt-4o-mini on the fake server's Batch API)")
    print(
        f"  {summary['fakebatch']['requests']:,} requests in {this_run.get('batches_submitted', 0)} "
        f"batches; ok {summary['fakebatch']['ok']:,}; server answered {usage['answered']:,}"
    )
    print(
        f"  recorded spend ${recorded:.4f}; server tokens x live price ${live:.4f}; "
        f"ratio {recorded / live:.3f} (batch price: 0.5)"
    )


def throughput_scenarios(args: argparse.Namespace, work: Path) -> None:
    results = []
    with FakeProviderServer(api_key="bench-key", latency_s=args.latency) as server:
        n = args.requests
        results.append(
            scenario("rate-bound", server, demo_requests(n), 900, 1, 16, args.latency, work / "a")
        )
        results.append(
            scenario(
                "concurrency-bound",
                server,
                demo_requests(n),
                None,
                2,
                4,
                args.latency,
                work / "b",
            )
        )
    mismatched = [
        (False, False, "no headers"),
        (True, False, "headers, no probe"),
        (True, True, "headers + probe_first"),
    ]
    for stated, probe, label in mismatched:
        with FakeProviderServer(
            api_key="bench-key",
            latency_s=args.latency,
            requests_per_minute=600,
            state_limits=stated,
        ) as strict:
            results.append(
                scenario(
                    f"server 600/min, config 1200/min, {label}",
                    strict,
                    demo_requests(n),
                    1200,
                    2,
                    16,
                    args.latency,
                    work / f"c{stated}{probe}",
                    server_rpm=600,
                    probe_first=probe,
                )
            )
    print(
        f"latency {args.latency}s per request; ceiling = min(configured rate, the server's limit, "
        "actors x concurrency / latency)"
    )
    print(
        f"{'scenario':<52}{'requests':>9}{'ok':>6}{'req/s':>8}{'ceiling':>9}{'ratio':>7}{'HTTP calls':>11}{'429s':>6}{'429 share':>10}"
    )
    for r in results:
        print(
            f"{r['scenario']:<52}{r['requests']:>9}{r['ok']:>6}{r['achieved']:>8.2f}{r['ceiling']:>9.2f}"
            f"{r['ratio']:>7.2f}{r['http_requests']:>11}{r['answered_429']:>6}{r['share_429']:>10.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--demos-only", action="store_true")
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    with tempfile.TemporaryDirectory() as tmp, ray_session(RayConfig()):
        work = Path(tmp)
        if not args.demos_only:
            throughput_scenarios(args, work)
        if not args.skip_demo:
            with FakeProviderServer(api_key="bench-key", latency_s=0.05) as server:
                demo_estimate(server, work)
            with FakeProviderServer(api_key="bench-key", batch_delay_s=2.0) as server:
                demo_batch(server, work)


if __name__ == "__main__":
    main()
