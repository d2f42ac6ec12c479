"""The whole pipeline at 100k and 1M posts resampled from the real files, on this machine.

Each size: a corpus built by `mpsynth.testing.corpus` from the public files in ../shared/data (or
--data DIR; the bundled samples when neither is there), then `mpsynth run` in-process: the LSA
embedder (the fast one), topics fitted on a stratified sample, generation through the real OpenAI
SDK against the local server (short fixed latency), n_posts scaled with the corpus, the evaluation's
per-post families on a sample per platform. Printed per stage: seconds, posts per second, peak memory
(PSS of this process and every Ray process, so shared object-store pages count once), and the
1M/100k cost ratio (linear is 10); then the object store's spill.

    .venv/bin/python benchmarks/pipeline_scale.py                      # 100k and 1M
    .venv/bin/python benchmarks/pipeline_scale.py --sizes 100000       # one size
    # a million synthetic posts from a million real ones (one set, 100 posts a request)
    .venv/bin/python benchmarks/pipeline_scale.py --sizes 1000000 --posts-per-generated 1 \
        --strategies mptm --posts-per-platform 25 --max-tokens 8192 --work /tmp/scale1m
    # the same, killed and started again: the stages done are skipped (their memory: "earlier")
    .venv/bin/python benchmarks/pipeline_scale.py ... --work /tmp/scale1m --resume
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import yaml

from mpsynth.config import RayConfig, load_config
from mpsynth.config.run import PIPELINES
from mpsynth.core import console
from mpsynth.distributed.session import ray_session
from mpsynth.orchestration.pipeline import run_pipeline
from mpsynth.testing import FakeProviderServer
from mpsynth.testing.corpus import build_corpus, real_posts
from mpsynth.testing.memory import MemoryTrace

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
FILES = (
    "politics_twitter_ira.csv",
    "politics_reddit_meiu22.csv",
    "aggression_facebook_twitter_trac1.csv",
    "youtube_spam.csv",
)
BUNDLED = [REPO / "data" / "demo" / "posts.csv"]
KEY_ENV = "MPSYNTH_SCALE_KEY"


def spilled_mib() -> float:
    """What the object store has spilled to disk so far (Ray's memory summary)."""
    from ray._private.internal_api import memory_summary

    found = re.search(r"Spilled (\d+) MiB", memory_summary(stats_only=True))
    return float(found.group(1)) if found else 0.0


def run_size(n: int, real, server: FakeProviderServer, args, work: Path) -> dict:
    corpus = work / f"corpus-{n}.parquet"
    config_path = work / f"scale-{n}.yaml"
    counts_path = work / f"corpus-{n}.json"
    resume = args.resume and config_path.is_file()  # the stages done stay done
    started = time.perf_counter()
    if resume:
        per_platform = json.loads(counts_path.read_text())
    else:
        per_platform = build_corpus(real, n, corpus, seed=n)
        counts_path.write_text(json.dumps(per_platform))
    built_s = time.perf_counter() - started
    if not resume:
        config_path.write_text(
            yaml.safe_dump(
                {
                    "run_dir": str(work / f"run-{n}"),
                    "seed": 13,
                    "ingest": {"inputs": [{"path": str(corpus)}]},
                    "embed": {
                        "embedder": {"kind": "lsa", "dimensions": 128, "fit_sample": 100_000},
                        "batch_size": 8192,
                    },
                    "topics": {
                        "fit_sample_per_platform": args.fit_sample_per_platform,
                        "min_cluster_size": 40,
                    },
                    "pools": {"strategies": args.strategies},
                    "prompts": {"posts_per_platform": args.posts_per_platform},
                    "generate": {
                        "n_posts": max(200, n // args.posts_per_generated),
                        # a request whose answer outgrows max_tokens twice fails; the scale is measured
                        # on the others (the count is in the generate stage's rows)
                        "accept_gaps": True,
                        "generators": [
                            {
                                "name": "api",
                                "provider": {
                                    "kind": "openai",
                                    "model": "gpt-4o-mini",
                                    "base_url": server.base_url,
                                    "api_key_env": KEY_ENV,
                                },
                                "actors": 2,
                                "max_tokens": args.max_tokens,
                                "rate": {"concurrency": 32},
                            }
                        ],
                    },
                    "evaluate": {
                        "sample_per_platform": args.evaluate_sample,
                        "bootstrap_samples": 200,
                    },
                }
            )
        )
    config = load_config(config_path)
    spilled_before = spilled_mib()
    with MemoryTrace() as memory:
        began = time.time()
        started = time.perf_counter()
        manifest = run_pipeline(config)
        total_s = time.perf_counter() - started
    stages = {}
    for stage in PIPELINES["mptm"]:
        entry = manifest["stages"][stage]
        end = datetime.fromisoformat(entry["finished"]).timestamp()
        ran_here = end >= began  # else done by the run resumed: its memory was not traced here
        stages[stage] = {
            "seconds": entry["seconds"],
            "peak": memory.peak(end - entry["seconds"] - 1.0, end + 1.0) if ran_here else None,
            "rows": entry["rows"],
        }
    return {
        "posts": n,
        "per_platform": per_platform,
        "corpus_s": built_s,
        "total_s": total_s,
        "peak": memory.peak(),
        "spilled_mib": spilled_mib() - spilled_before,
        "stages": stages,
        "requests": manifest["stages"]["prompts"]["rows"]["requests"],
    }


def _resumed_port(args) -> int:
    """The port the local server had in the run resumed (its requests' ids name the server), else
    0 (any)."""
    for n in args.sizes if args.resume and args.work else ():
        path = args.work / f"scale-{n}.yaml"
        if path.is_file():
            generator = yaml.safe_load(path.read_text())["generate"]["generators"][0]
            return urlsplit(generator["provider"]["base_url"]).port or 0
    return 0


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--fit-sample-per-platform", type=int, default=5_000)
    parser.add_argument("--evaluate-sample", type=int, default=2_000)
    parser.add_argument(
        "--posts-per-generated", type=int, default=100, help="n_posts = corpus size / this"
    )
    parser.add_argument(
        "--strategies", nargs="+", default=["mptm", "per_platform"], help="the synthetic sets"
    )
    parser.add_argument(
        "--posts-per-platform", type=int, default=3, help="posts a request asks per platform"
    )
    parser.add_argument("--max-tokens", type=int, default=1024, help="per request")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--work", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --work: go on with the runs there (their corpus and config kept, the stages "
        "done skipped)",
    )
    args = parser.parse_args()
    paths = [args.data / name for name in FILES]
    if not all(p.is_file() for p in paths):
        print(f"{args.data} lacks the public files: resampling the bundled demo posts instead")
        paths = BUNDLED
    os.environ[KEY_ENV] = "scale-key"
    console.setup(False)  # mpsynth's progress lines, as `mpsynth run` shows them
    cpu = psutil.cpu_count()
    memory = psutil.virtual_memory().total
    print(
        f"machine: {cpu} CPUs, {gib(memory)} GiB memory; real files: {', '.join(p.name for p in paths)}"
    )
    real = real_posts(paths)
    print(f"real posts after ingest: {real.num_rows:,}")
    results = []
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.nullcontext(str(args.work))
        if args.work
        else tempfile.TemporaryDirectory() as tmp,
        ray_session(RayConfig()),
        FakeProviderServer(
            api_key="scale-key", latency_s=args.latency, port=_resumed_port(args)
        ) as server,
    ):
        for n in args.sizes:
            result = run_size(n, real, server, args, Path(tmp))
            results.append(result)
            print(
                f"\n{n:,} posts: {result['total_s']:.0f} s in all, peak {gib(result['peak'])} GiB, "
                f"spilled {result['spilled_mib']:.0f} MiB, {result['requests']:,} requests "
                f"(corpus built in {result['corpus_s']:.0f} s)"
            )
            print(f"{'stage':<12}{'seconds':>9}{'posts/s':>10}{'peak GiB':>10}  rows")
            for stage, s in result["stages"].items():
                rate = n / s["seconds"] if s["seconds"] else float("inf")
                peak = gib(s["peak"]) if s["peak"] is not None else "earlier"
                print(f"{stage:<12}{s['seconds']:>9.1f}{rate:>10.0f}{peak:>10}  {s['rows']}")
    if len(results) > 1:
        small, large = results[0], results[-1]
        scale = large["posts"] / small["posts"]
        print(f"\ncost ratio {large['posts']:,} / {small['posts']:,} posts (linear is {scale:g})")
        print(f"{'stage':<12}{'small s':>9}{'large s':>9}{'ratio':>8}")
        for stage in small["stages"]:
            a, b = small["stages"][stage]["seconds"], large["stages"][stage]["seconds"]
            print(f"{stage:<12}{a:>9.1f}{b:>9.1f}{(b / a if a else float('nan')):>8.1f}")
        print(
            f"{'all':<12}{small['total_s']:>9.1f}{large['total_s']:>9.1f}{large['total_s'] / small['total_s']:>8.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
