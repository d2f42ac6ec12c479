"""A cue word that names someone, through the whole labelled pipeline: sixty YouTube spam posts of
the bundled sample are given `add me @jdoe_1984 or mail jdoe_1984@gmail.com`, the classifier learns
the mailbox as a cue of `spam`, and the run generates with a hosted model (the local fake OpenAI
server). Prints how many of the request bodies the server received carry `jdoe_1984` (what left the
machine), and the prompts stage's masked counts from the manifest.

    .venv/bin/python benchmarks/privacy_cue_words.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
from pathlib import Path

from mpsynth.cli import main as mpsynth
from mpsynth.testing import FakeProviderServer

REPO = Path(__file__).resolve().parents[1]
NAME = "jdoe_1984"


def spam_file(path: Path) -> Path:
    with (REPO / "tests" / "data" / "youtube_spam.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    spam = [r for r in rows if r["label"] == "spam"]
    for row in spam[:60]:
        row["text"] += f" add me @{NAME} or mail {NAME}@gmail.com"
    columns = ["platform", "id", "timestamp", "author", "text", "label"]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="mpsynth-cues-"))
    out.mkdir(parents=True, exist_ok=True)
    data = spam_file(out / "spam.csv")
    config = out / "spam.yaml"
    os.environ["MPSYNTH_BENCH_KEY"] = "bench-key"
    with FakeProviderServer(api_key="bench-key") as server:
        config.write_text(
            f"""run_dir: {out / "run"}
seed: 5
pipeline: labelled
ingest: {{inputs: [{{path: {data}, platform: youtube}}]}}
embed: {{embedder: {{kind: lsa, dimensions: 32}}}}
topics: {{min_cluster_size: 10}}
prompts: {{posts_per_platform: 5}}
generate:
  n_posts: 60
  generators:
    - name: hosted
      provider: {{kind: openai, model: gpt-4o-mini, base_url: "{server.base_url}", api_key_env: MPSYNTH_BENCH_KEY}}
labelled:
  split: {{seed_size: 300}}
  utility: {{added: [20], repeats: 1, bootstrap_samples: 20}}
evaluate: {{bootstrap_samples: 10, embedder: null, ner_model: null}}
"""
        )
        code = mpsynth(["run", str(config)])
        bodies = [json.dumps(r["body"]) for r in server.log.requests]
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    rows = manifest["stages"]["prompts"]["rows"]
    carrying = sum(NAME in body for body in bodies)
    print(f"run exit status {code}; requests received by the hosted model: {len(bodies)}")
    print(f"requests carrying {NAME!r}: {carrying} of {len(bodies)}")
    print(f"prompts stage, manifest: {json.dumps(rows)}")


if __name__ == "__main__":
    main()
