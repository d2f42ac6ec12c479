"""The viewer on a finished run, in headless Chromium: a post opened with the real posts its prompt
showed (a screenshot), posts flagged and exported, and `mpsynth drop` with the export on a copy of
the run: the set, the metrics and the viewer before and after.

    .venv/bin/python benchmarks/viewer_roundtrip.py runs/demo --flag 3 --screenshot docs/viewer.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from mpsynth.testing.browser import Page


def viewer_ids(run: Path, name: str) -> set[str]:
    page = (run / "report" / "viewer.html").read_text()
    data = json.loads(page.split('type="application/json">')[1].split("</script>")[0])
    return {p["id"] for p in data["sets"][name]["posts"]}


def posts_measured(run: Path, name: str) -> int:
    rows = pq.read_table(run / "evaluate" / "metrics.parquet").to_pylist()
    return next(
        r["n"] for r in rows
        if r["dataset"] == name and r["platform"] == "all" and r["metric"] == "mean_chars"
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--set", default="markov-mptm")
    parser.add_argument("--flag", type=int, default=3)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(args.run_dir, run)
        final = run / "structure" / "synthetic" / f"{args.set}.parquet"
        posts = pq.read_table(final).to_pylist()
        shown = next(p for p in posts if p["platform"] == "twitter" and p.get("author"))
        url = (run / "report" / "viewer.html").as_uri()

        async def review() -> str:
            async with Page(Path(tmp) / "profile") as page:
                await page.goto(f"{url}#set={args.set}&platform=twitter&post={shown['id']}")
                examples = await page.js("document.querySelectorAll('#examples .post').length")
                print(f"opened {shown['id']}: {examples} real examples shown "
                      f"(its prompt showed {len(shown['example_ids'])})")  # fmt: skip
                if args.screenshot:
                    await page.screenshot(args.screenshot)
                    print(f"screenshot: {args.screenshot}")
                await page.goto("about:blank")
                await page.goto(f"{url}#set={args.set}")
                await page.js(
                    f"[...document.querySelectorAll('#posts .post input')].slice(0, {args.flag})"
                    ".forEach(b => b.click())"
                )
                await page.js("document.getElementById('export').click()")
                return await page.js("document.getElementById('exported').value")

        exported = asyncio.run(review())
        ids_file = Path(tmp) / "flagged-ids.txt"
        ids_file.write_text(exported)
        flagged = [ln.split("\t")[1] for ln in exported.splitlines() if not ln.startswith("#")]
        print(f"exported:\n{exported}")
        before = (len(posts), posts_measured(run, args.set), len(viewer_ids(run, args.set)))
        done = subprocess.run(
            [sys.executable, "-m", "mpsynth.cli", "drop", str(run), "--ids", str(ids_file)],
            capture_output=True,
            text=True,
        )
        print("mpsynth drop: exit", done.returncode)
        print("\n".join(ln for ln in done.stderr.splitlines() if "drop" in ln or "done in" in ln))
        kept = pq.read_table(final)
        after = (kept.num_rows, posts_measured(run, args.set), len(viewer_ids(run, args.set)))
        gone = not set(flagged) & (set(kept["id"].to_pylist()) | viewer_ids(run, args.set))
        print(f"{args.set}: posts {before[0]} -> {after[0]}; posts measured (mean_chars, all "
              f"platforms) {before[1]} -> {after[1]}; posts in the viewer {before[2]} -> "
              f"{after[2]}; flagged ids gone from the set and the viewer: {gone}")  # fmt: skip


if __name__ == "__main__":
    main()
