"""`mpsynth publish` on a finished run, checked with the tools its readers use: the folder's tree,
each set loaded by `datasets.load_dataset`, the card's YAML header, `mlcroissant`'s validation and
the records it reads, the commit a local Hub received from the real `huggingface_hub` client, and
the real posts refused where a licence forbids passing them on.

    .venv/bin/python benchmarks/publish_check.py runs/demo
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # loading the folder downloads nothing
    import huggingface_hub.constants
    import mlcroissant as mlc
    from datasets import get_dataset_config_names, load_dataset

    from mpsynth.config import load_config
    from mpsynth.core.errors import StageError
    from mpsynth.publish.folder import check_real_licences, publish_folder
    from mpsynth.publish.hub import upload
    from mpsynth.rundir.directory import RunDirectory
    from mpsynth.testing.hub import FakeHub

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "published"
        summary = publish_folder(args.run_dir, out, include_real=True, licence="cc-by-4.0")
        print("## the folder")
        for path in sorted(out.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(out)}  ({path.stat().st_size:,} bytes)")
        header = (out / "README.md").read_text().split("---")[1]
        print("\n## the card's YAML header\n" + header.strip())
        print("\n## datasets.load_dataset")
        for name in get_dataset_config_names(str(out)):
            loaded = load_dataset(str(out), name, split="train", cache_dir=str(Path(tmp) / "hf"))
            print(f"  {name}: {loaded.num_rows} rows; features: {', '.join(loaded.features)}")
        print("\n## mlcroissant")
        validated = subprocess.run(
            [str(Path(sys.executable).parent / "mlcroissant"), "validate", "--jsonld",
             str(out / "croissant.json")],
            capture_output=True,
            text=True,
        )  # fmt: skip
        print(f"  validate: exit {validated.returncode}; "
              + (validated.stdout + validated.stderr).strip().splitlines()[-1])  # fmt: skip
        dataset = mlc.Dataset(jsonld=out / "croissant.json")
        for record_set in dataset.metadata.record_sets:
            records = list(itertools.islice(dataset.records(record_set=record_set.uuid), 2))
            first = {k.split("/")[-1]: v for k, v in records[0].items()} if records else {}
            text = first.get("text", b"")
            text = text.decode() if isinstance(text, bytes) else str(text)
            print(f"  {record_set.uuid}: first record {first.get('id', b'')!r}: {text[:70]!r}")
        print("\n## the upload (a local Hub, the real huggingface_hub client)")
        huggingface_hub.constants.HF_HUB_OFFLINE = False
        os.environ["HF_TOKEN"] = "hf_publish_check"
        fingerprint = str(RunDirectory(args.run_dir).manifest().get("config_hash", ""))
        with FakeHub() as hub:
            upload(out, "lab/synthetic-demo", True, fingerprint, endpoint=hub.url)
        (commit,) = hub.log.commits
        print(f"  repo {commit.repo}, message {commit.message!r}, {len(commit.files)} files, "
              f"{sum(len(d) for d in commit.files.values()):,} bytes; the token in none of them: "
              f"{all(b'hf_publish_check' not in d for d in commit.files.values())}")  # fmt: skip
        for name, data in sorted(commit.files.items()):
            print(f"    {name}: {len(data):,} bytes")
        print("\n## the real posts under a licence that forbids passing them on")
        config = load_config(args.run_dir / "config.yaml")
        spec = config.ingest.inputs[0].model_copy(update={"license": "LicenseRef-Twitter-ToS"})
        closed = config.model_copy(
            update={"ingest": config.ingest.model_copy(update={"inputs": [spec]})}
        )
        try:
            check_real_licences(closed)
        except StageError as error:
            print(f"  refused: {error}")
        print(f"\n{json.dumps({k: v for k, v in summary.items() if k != 'files'})}")
        yaml.safe_load(header)  # the header is YAML a Hub reader parses


if __name__ == "__main__":
    main()
