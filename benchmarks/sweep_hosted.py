"""A sweep over a hosted model (the local fake server behind the real OpenAI SDK, lognormal latency):
wall time and generation time with the variations' requests sent one variation after another
(`together: false`) and all at once (`together: true`), then the same sweep under a budget of a
fifth of its estimated cost.

    .venv/bin/python benchmarks/sweep_hosted.py [--n-posts 240] [--latency 0.5] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from mpsynth.config.sweep import load_grid
from mpsynth.core.errors import StageError
from mpsynth.orchestration.pipeline import estimate
from mpsynth.orchestration.sweep import plan_sweep, run_sweep, spent_usd
from mpsynth.testing import FakeProviderServer

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "MPSYNTH_BENCH_KEY"
GRID = {"pools.examples_per_prompt": [5, 9], "generate.generators.0.temperature": [0.7, 1.0]}
PRICE = {"input_per_mtok": 0.15, "output_per_mtok": 0.60}


def config(work: Path, server: FakeProviderServer, args) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    raw["run_dir"] = str(work / "run")
    for spec in raw["ingest"]["inputs"]:
        spec["path"] = str(REPO / spec["path"])
    raw["generate"] = {
        "n_posts": args.n_posts,
        "prices": {"bench-model": PRICE},
        "generators": [
            {
                "name": "hosted",
                "provider": {
                    "kind": "openai",
                    "model": "bench-model",
                    "base_url": server.base_url,
                    "api_key_env": KEY_ENV,
                },
                "rate": {"concurrency": args.concurrency, "probe_first": False},
                "retry": {"timeout_s": 30},
            }
        ],
    }
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def sweep(work: Path, config_path: Path, together: bool, budget: float | None = None) -> dict:
    grid = {"grid": GRID, "together": together}
    if budget is not None:
        grid["budget_usd"] = budget
    (work / "grid.yaml").write_text(yaml.safe_dump(grid))
    out = work / ("together" if together else "one-by-one") / ("budget" if budget else "full")
    started = time.perf_counter()
    error = None
    try:
        run_sweep(config_path, work / "grid.yaml", out=out)
    except StageError as stopped:
        error = str(stopped).splitlines()[0]
    wall = time.perf_counter() - started
    variations = plan_sweep(config_path, load_grid(work / "grid.yaml"), (), out)
    generate_s = sum(
        json.loads((v.root / "manifest.json").read_text())["stages"]
        .get("generate", {})
        .get("seconds", 0.0)
        for v in variations
        if (v.root / "manifest.json").is_file()
    )
    return {
        "wall_s": wall,
        "generate_stage_s": generate_s,
        "spent_usd": spent_usd(variations, out),
        "error": error,
        "out": out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-posts", type=int, default=240)
    parser.add_argument("--latency", type=float, default=0.5, help="median seconds per answer")
    parser.add_argument("--concurrency", type=int, default=4, help="in flight per variation")
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    rng = np.random.default_rng(0)

    def latency() -> float:
        return float(rng.lognormal(math.log(args.latency), 0.5))

    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProviderServer(api_key="bench-key", latency_s=latency, log_bodies=False) as server,
    ):
        work = Path(tmp)
        config_path = config(work, server, args)
        rows = {}
        for together in (False, True):
            before = len(server.log.requests)
            result = sweep(work, config_path, together)
            result["sent"] = len(server.log.requests) - before
            rows["together" if together else "one by one"] = result
        for name, r in rows.items():
            print(
                f"{name:>10}: wall {r['wall_s']:.1f} s, generate stages {r['generate_stage_s']:.1f}"
                f" s, {r['sent']} requests sent, ${r['spent_usd']:.4f}"
            )
        print(f"wall ratio one by one / together: "
              f"{rows['one by one']['wall_s'] / rows['together']['wall_s']:.2f}")  # fmt: skip
        # the budget: a fifth of what every variation's requests are estimated to cost
        grid = load_grid(work / "grid.yaml")
        variations = plan_sweep(config_path, grid, (), rows["together"]["out"])
        expected = sum(r["expected_usd"] for v in variations for r in estimate(v.config))
        budget = round(expected / 5, 6)
        before = len(server.log.requests)
        capped = sweep(work, config_path, True, budget)
        sent = len(server.log.requests) - before
        requests = sum(
            pq.read_table(v.root / "prompts" / "requests.parquet").num_rows for v in variations
        )
        print(
            f"budget ${budget:.4f} (a fifth of ${expected:.4f} estimated for {requests} "
            f"requests): spent ${capped['spent_usd']:.4f} "
            f"({capped['spent_usd'] / budget:.2%} of it), {sent} requests sent; "
            f"the sweep ended: {capped['error']}"
        )


if __name__ == "__main__":
    main()
