"""Generation at scale: N requests through the real OpenAI SDK, Ray worker actors, one governor and
the write-ahead ledger, against the local fake server with lognormal latency and a stated limit;
the driver killed with SIGKILL (its whole process group, Ray's processes with it) about half way,
then resumed.

Prints the rate reached against two ceilings (the stated limit, and a raw async client on the same
server: what this machine can push through it), the 429 share, the peak memory of every process,
the ledger's size, and after the resume the requests the server answered against the distinct
prompts. A prompt answered twice is either a usable answer the kill lost between the server and
the write-ahead log (bought twice), or an unusable one (cut at max_tokens) asked again: a failed
request, which every rerun asks again, or a repair the kill cut off.

    .venv/bin/python benchmarks/generation_scale.py --requests 30000 --rpm 30000
    .venv/bin/python benchmarks/generation_scale.py --requests 166667 --keep /tmp/scale-run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY_ENV = "MPSYNTH_BENCH_KEY"
HERE = Path(__file__).resolve()


def generator_settings(base_url: str, args) -> dict:
    return {
        "name": "bench",
        "provider": {
            "kind": "openai",
            "model": "bench-model",
            "base_url": base_url,
            "api_key_env": KEY_ENV,
        },
        "actors": args.actors,
        "max_tokens": 400,
        "rate": {"requests_per_minute": args.rpm, "concurrency": args.concurrency},
        "retry": {"max_attempts": 10, "base_delay_s": 0.5, "timeout_s": 60},
    }


def worker(work: Path) -> None:
    """The driver that is killed and resumed: every request not yet in the ledger, through Ray."""
    from mpsynth.config import GeneratorConfig, RayConfig
    from mpsynth.core import console
    from mpsynth.distributed.generation import run_generator
    from mpsynth.distributed.session import ray_session
    from mpsynth.generation.pricing import Price

    settings = json.loads((work / "settings.json").read_text())
    console.setup(False)
    requests = pq.read_table(work / "requests.parquet")
    with console.native_output_to_run_log(), ray_session(RayConfig(), lazy=False):
        counts = run_generator(
            GeneratorConfig.model_validate(settings),
            requests,
            work / "ledger",
            None,
            Price(0.15, 0.60),
            None,
            RayConfig(),
            flush_every=512,
            progress_interval_s=30.0,
        )
    (work / f"counts-{os.getpid()}.json").write_text(json.dumps(counts))


class Peaks:
    """Peak resident memory of every process in a process tree, sampled twice a second."""

    def __init__(self, root_pid: int) -> None:
        self.root = root_pid
        self.peaks: dict[str, int] = {}
        self.total = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                processes = [psutil.Process(self.root), *psutil.Process(self.root).children(True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in processes:
                try:
                    rss = process.memory_info().rss
                    name = _name(process)
                except psutil.Error:
                    continue
                total += rss
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self.total = max(self.total, total)
            self.stop.wait(0.5)


def _name(process: psutil.Process) -> str:
    line = " ".join(process.cmdline())
    if "generation_scale.py" in line:
        return "driver"
    for known in ("raylet", "gcs_server", "dashboard", "log_monitor", "runtime_env"):
        if known in line:
            return known
    return process.name()[:40]


def raw_ceiling(base_url: str, n: int, in_flight: int) -> float:
    """Answers per second of a bare AsyncOpenAI client keeping `in_flight` requests open."""
    from openai import AsyncOpenAI

    async def run() -> float:
        client = AsyncOpenAI(base_url=base_url, api_key="bench-key", max_retries=0)
        queue = list(range(n))
        done = 0

        async def one() -> None:
            nonlocal done
            while queue:
                i = queue.pop()
                await client.chat.completions.create(
                    model="bench-model",
                    max_tokens=400,
                    messages=[{"role": "user", "content": f"ceiling probe {i}"}],
                )
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(in_flight)))
        return done / (time.perf_counter() - started)

    return asyncio.run(run())


def start(work: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE), "--worker", str(work)],
        env={**os.environ, KEY_ENV: "bench-key"},
        start_new_session=True,  # its own process group: the kill takes Ray's processes too
        stdout=subprocess.DEVNULL,
        stderr=open(work / "driver.log", "ab"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--rpm", type=float, default=30_000, help="the stated limit")
    parser.add_argument("--latency", type=float, default=1.0, help="median seconds per answer")
    parser.add_argument("--actors", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=128, help="in flight per actor")
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep it (the ledger, the driver's log)"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)

    sys.path.insert(0, str(HERE.parent))
    from generation_throughput import demo_requests

    from mpsynth.generation.ledger import read_ledger
    from mpsynth.testing import FakeProviderServer

    rng = np.random.default_rng(0)
    lock = threading.Lock()

    def latency() -> float:
        with lock:
            return float(rng.lognormal(math.log(args.latency), 0.5))

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
    with (
        contextlib.nullcontext(str(args.keep))
        if args.keep
        else tempfile.TemporaryDirectory() as tmp,
        FakeProviderServer(
            api_key="bench-key",
            latency_s=latency,
            requests_per_minute=args.rpm,
            log_bodies=False,
        ) as server,
    ):
        work = Path(tmp)
        requests = demo_requests(args.requests)
        pq.write_table(requests, work / "requests.parquet")
        (work / "settings.json").write_text(json.dumps(generator_settings(server.base_url, args)))
        in_flight = args.actors * args.concurrency
        probe = min(5_000, args.requests)
        ceiling = raw_ceiling(server.base_url, probe, in_flight)
        print(f"raw AsyncOpenAI client, {in_flight} in flight: {ceiling:.1f} answers/s "
              f"(the stated limit: {args.rpm / 60:.1f}/s)")  # fmt: skip
        server.log.requests.clear()

        phases = []
        killed_at = resumed_at = math.inf
        for phase in ("until the kill", "resumed"):
            if phase == "resumed":
                resumed_at = time.time()
            started, before = time.perf_counter(), len(server.log.requests)
            driver = start(work)
            peaks = Peaks(driver.pid)
            killed = False
            while driver.poll() is None:
                answered = sum(1 for e in server.log.requests if e["status"] == 200)
                if phase == "until the kill" and answered >= args.kill_at * args.requests:
                    os.killpg(driver.pid, signal.SIGKILL)
                    killed_at = time.time()
                    killed = True
                    break
                time.sleep(0.2)
            driver.wait()
            peaks.stop.set()
            wall = time.perf_counter() - started
            entries = server.log.requests[before:]
            statuses = Counter(e["status"] for e in entries)
            phases.append((phase, wall, statuses, peaks, killed))
            if killed:
                time.sleep(3)  # answers in flight reach the server's log
        ledger = read_ledger(work / "ledger") if (work / "ledger").exists() else None
        size = sum(p.stat().st_size for p in (work / "ledger").rglob("*") if p.is_file())

        for phase, wall, statuses, peaks, killed in phases:
            ok = statuses.get(200, 0)
            total = sum(statuses.values())
            print(f"\n{phase}: {wall:.1f} s, {ok:,} answered ({ok / wall:.1f}/s: "
                  f"{ok / wall / (args.rpm / 60):.2f} of the stated limit, "
                  f"{ok / wall / ceiling:.2f} of the raw client), "
                  f"429: {statuses.get(429, 0):,} of {total:,} ({statuses.get(429, 0) / max(total, 1):.1%})"
                  + (" [killed]" if killed else ""))  # fmt: skip
            print(f"  peak memory, all processes together: {peaks.total / 2**20:,.0f} MiB")
            for name, rss in sorted(peaks.peaks.items(), key=lambda kv: -kv[1])[:8]:
                print(f"    {name}: {rss / 2**20:,.0f} MiB")
        answered = [e["digest"] for e in server.log.requests if e["status"] == 200]
        distinct = len(set(answered))
        # each prompt answered twice, by why: its first answer was cut at max_tokens (the request
        # failed, its repair too, and the resumed run asks it again, as a rerun does for every
        # failed request; or the kill cut its repair off), else by when its first copy reached the
        # server: before the kill (in flight at it), or after it from the killed run's workers
        # (sent when they should have stopped)
        first: dict[str, dict] = {}
        twice = Counter()
        for entry in server.log.requests:
            if entry["status"] != 200:
                continue
            if entry["digest"] not in first:
                first[entry["digest"]] = entry
                continue
            earlier = first[entry["digest"]]
            sent = earlier["received_at"]
            twice["its first answer cut at max_tokens, so unusable and asked again (the "
                  "request had failed, repair included, or the kill cut its repair off)"
                  if earlier.get("finish_reason") == "length" else
                  "first sent before the kill, its answer usable: bought twice" if sent < killed_at
                  else "first sent after the kill, before the resume" if sent < resumed_at else
                  "both sent after the resume"] += 1  # fmt: skip
        ok_rows = ledger.filter(pc.equal(ledger.column("status"), "ok")) if ledger else None
        print(f"\nledger: {ledger.num_rows if ledger else 0:,} rows, {size / 2**20:.1f} MiB")
        print(f"server answered {len(answered):,} requests for {distinct:,} distinct prompts of "
              f"{args.requests:,}: {len(answered) - distinct:,} answered twice "
              f"(at most {in_flight:,} were in flight at the kill)")  # fmt: skip
        for why, count in twice.items():
            print(f"  {why}: {count:,}")
        if ok_rows is not None:
            ids = ok_rows.column("request_id").to_pylist()
            print(f"ledger: {len(set(ids)):,} requests settled ok, "
                  f"{len(ids) - len(set(ids)):,} settled twice")  # fmt: skip
            failed = ledger.filter(pc.not_equal(ledger.column("status"), "ok"))
            before = pc.less(failed.column("finished_at"), killed_at)
            print(f"ledger: {pc.sum(before).as_py() or 0:,} requests failed before the kill "
                  f"(asked again on the resume), {failed.num_rows:,} failed rows in all")  # fmt: skip


if __name__ == "__main__":
    main()
