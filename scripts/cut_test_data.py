"""Cut the bundled test samples from the full public files (run by hand; the tests never read the
full files). Deterministic: the same source files give the same samples, rows in file order.

    python scripts/cut_test_data.py PATH/TO/FULL/FILES
"""

from __future__ import annotations

import csv
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "tests" / "data"

# output name -> (source file, rows per platform, or None for the first rows of the file)
SAMPLES = {
    "ira_tweets.csv": ("politics_twitter_ira.csv", {"twitter": 2000}, "first"),
    "trac1_aggression.csv": (
        "aggression_facebook_twitter_trac1.csv",
        {"facebook": 1500, "twitter": 500},
        "seeded",
    ),
    "goemotions.csv": ("emotion_goemotions.csv", {"reddit": 2000}, "seeded"),
    "youtube_spam.csv": ("youtube_spam.csv", {"youtube": 1000}, "seeded"),
}


def cut(source: Path, per_platform: dict[str, int], how: str) -> tuple[list[str], list[dict]]:
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    keep: set[int] = set()
    for platform, n in per_platform.items():
        positions = [i for i, row in enumerate(rows) if row["platform"] == platform]
        picked = positions[:n] if how == "first" else random.Random(0).sample(positions, n)
        keep.update(picked)
    return columns, [rows[i] for i in sorted(keep)]


def coordinated(source: Path, others: int = 500) -> tuple[list[str], list[dict]]:
    """The IRA tweets that two or more accounts have in common (the same retweeted text, the same
    own text, the same URL, the same opening 40 characters, lower-cased, or for their own tweets
    the same @handle first), beside `others` seeded tweets: every coordination network has pairs
    to find. No time window is applied."""
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = list(reader.fieldnames or [])
    keys: dict[str, set[int]] = {}
    for i, row in enumerate(rows):
        text = row["text"].lower()
        found = [f"{row['post_type']}:{text}", f"opening:{text[:40]}"]
        found += [f"url:{u}" for u in re.findall(r"https?://\S+", row["text"])]
        handle = re.match(r"'?@(\w+)", text)
        if handle and row["post_type"] != "retweet":
            found.append(f"reply:{handle.group(1)}")
        for key in found:
            keys.setdefault(key, set()).add(i)
    keep: set[int] = set()
    for members in keys.values():
        if len({rows[i]["author"] for i in members}) > 1:
            keep.update(members)
    rest = [i for i in range(len(rows)) if i not in keep]
    keep.update(random.Random(0).sample(rest, others))
    return columns, [rows[i] for i in sorted(keep)]


def main(source_dir: Path) -> None:
    for name, (source, per_platform, how) in SAMPLES.items():
        columns, rows = cut(source_dir / source, per_platform, how)
        with (HERE / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        print(f"{name}: {len(rows)} rows from {source}")
    columns, rows = coordinated(source_dir / "politics_twitter_ira.csv")
    with (HERE / "ira_coordinated.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"ira_coordinated.csv: {len(rows)} rows from politics_twitter_ira.csv")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} FOLDER-OF-THE-FULL-FILES")
    main(Path(sys.argv[1]))
