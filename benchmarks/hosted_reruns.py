"""The demo with a hosted-style generator (the local fake server behind the real OpenAI SDK), run to
postprocess under four conditions:

1. Failed requests finished on rerun: the server answers 500 to 5% of the prompts (chosen by their
   content, every time) for one run, then recovers. The first run leaves generate uncommitted;
   the rerun, without --force, sends exactly the failed prompts, and the set is complete.
2. The completion cache: the same config into a second run directory sends nothing and writes the
   same sets; a third run with a changed parser parses the cached answers again (nothing sent);
   a fourth with another temperature asks again.

    .venv/bin/python benchmarks/hosted_reruns.py
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from mpsynth.config import load_config
from mpsynth.core.errors import StageError
from mpsynth.orchestration.pipeline import run_pipeline
from mpsynth.testing import FakeProviderServer

REPO = Path(__file__).resolve().parents[1]
KEY_ENV = "MPSYNTH_BENCH_KEY"
SET = "hosted-mptm"


def demo(run_dir: Path, server: FakeProviderServer, temperature: float = 1.0):
    provider = (
        f"{{kind: openai, model: bench-model, base_url: '{server.base_url}', "
        f"api_key_env: {KEY_ENV}}}"
    )
    generator = (
        f"{{name: hosted, provider: {provider}, temperature: {temperature}, "
        "retry: {max_attempts: 2, base_delay_s: 0.05}, rate: {concurrency: 16}}"
    )
    return load_config(
        REPO / "configs" / "demo.yaml",
        [f"run_dir={run_dir}", f"generate.generators=[{generator}]"],
    )


def sent_since(server: FakeProviderServer, before: int) -> list[dict]:
    return server.log.requests[before:]


def prompt_of(body: dict) -> str:
    return hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()


def posts(config, name: str = SET) -> list[str]:
    path = config.run_dir / "postprocess" / "synthetic" / f"{name}.parquet"
    return pq.read_table(path).column("text").to_pylist()


def main() -> None:
    os.environ[KEY_ENV] = "bench-key"
    with tempfile.TemporaryDirectory() as tmp, FakeProviderServer(api_key="bench-key") as server:
        work = Path(tmp)
        cache = work / "cache"  # the completion and embedding cache of the runs of part 1
        os.chdir(REPO)

        # 1. five per cent of the prompts fail, every time, for one run
        server.failing = lambda body: int(prompt_of(body)[:8], 16) % 20 == 0
        config = demo(work / "failing", server)
        before = len(server.log.requests)
        try:
            run_pipeline(config, until="postprocess", cache_dir=cache)
            first_error = None
        except StageError as error:
            first_error = str(error).splitlines()[0]
        first = sent_since(server, before)
        failed = {prompt_of(e["body"]) for e in first if e["status"] == 500}
        requests = pq.read_table(config.run_dir / "prompts" / "requests.parquet").num_rows
        print(f"1. first run: {requests} requests, {len(first)} HTTP calls, {len(failed)} prompts "
              f"({len(failed) / requests:.1%}) failed every attempt; the run ended: {first_error}")  # fmt: skip
        server.failing = None  # the server recovers
        before = len(server.log.requests)
        run_pipeline(config, until="postprocess", cache_dir=cache)
        rerun = {prompt_of(e["body"]) for e in sent_since(server, before)}
        completions = pq.read_table(config.run_dir / "generate" / "completions.parquet")
        ok = sum(s == "ok" for s in completions.column("status").to_pylist())
        print(f"   rerun without --force: {len(sent_since(server, before))} requests sent, "
              f"{'exactly' if rerun == failed else 'NOT'} the failed prompts; "
              f"{ok} of {requests} requests answered, {len(posts(config))} posts in {SET}")  # fmt: skip

        # 2. the completion cache across run directories (a cache of their own)
        cache = work / "cache-2"
        runs = {}
        for name, temperature in (
            ("first", 1.0),
            ("second", 1.0),
            ("parser", 1.0),
            ("warmer", 1.3),
        ):
            config = demo(work / name, server, temperature)
            before = len(server.log.requests)
            if name == "parser":  # a changed parser: every post's text upper-cased
                import mpsynth.stages.postprocess.parse as parse

                original = parse.parse_posts

                def upper_cased(text: str, parse_posts=original) -> list[dict]:
                    return [{**item, "text": item["text"].upper()} for item in parse_posts(text)]

                parse.parse_posts = upper_cased
                try:
                    run_pipeline(config, until="postprocess", cache_dir=cache)
                finally:
                    parse.parse_posts = original
            else:
                run_pipeline(config, until="postprocess", cache_dir=cache)
            runs[name] = (config, len(sent_since(server, before)))
        (first, n1), (second, n2), (parser, n3), (_, n4) = runs.values()
        print(f"2. first run directory: {n1} requests sent; second: {n2} sent, sets "
              f"{'identical' if posts(first) == posts(second) else 'DIFFERENT'} "
              f"({len(posts(second))} posts)")  # fmt: skip
        upper = [t.upper() for t in posts(first)]
        print(f"   a changed parser: {n3} sent, its set is the cached answers parsed again: "
              f"{'yes' if posts(parser) == upper else 'NO'}")  # fmt: skip
        print(f"   temperature 1.3: {n4} sent (of {requests} requests)")


if __name__ == "__main__":
    main()
