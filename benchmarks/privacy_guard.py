"""The privacy guard on two labelled sets of identifiers: recall per kind (handles of any script,
plain and obfuscated e-mails, phone numbers in national and international formats, URLs), how
many masked identifiers kept their shape (the text around them unchanged, a handle's `@` or
`u/` kept), and how many ordinary posts it changed (false positives).

- `tests/data/privacy_identifiers.csv`: the development set, written alongside the rules (in-sample);
- `tests/data/privacy_identifiers_frozen.csv`: written before the rules were last changed and
  frozen since; its failures were seen while the rules were changed, so its figures after the
  change are in-sample;
- `tests/data/privacy_identifiers_unseen.csv`: written before the rules were last changed and not
  scored until they were final (out of sample).

Then the real posts bundled with the repository: how many the guard changes beyond what
twitter-text's rules (mentions and URLs) mask, the e-mails and phone numbers among them real or not.

    .venv/bin/python benchmarks/privacy_guard.py [--data FILE ...] [--show]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpsynth.stages.prompts.guard import Pseudonymiser
from mpsynth.testing.identifiers import score

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = [DATA / f"privacy_identifiers{name}.csv" for name in ("", "_frozen", "_unseen")]
REAL = [
    DATA.parent.parent / "data" / "demo" / "posts.csv",
    *(DATA / name for name in ("ira_tweets.csv", "trac1_aggression.csv", "youtube_spam.csv")),
    DATA / "goemotions.csv",
]


def beyond_twitter_text(show: bool) -> None:
    """Posts of the bundled real data the guard changes where twitter-text's rules would not."""
    import csv

    from mpsynth.metrics.extraction import entity_spans

    guard, posts, changed = Pseudonymiser(seed=0), 0, []
    for path in REAL:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text, platform = row["text"], row.get("platform")
                posts += 1
                twitter = {
                    (s, e) for s, e, k in entity_spans(text, platform) if k in ("urls", "mentions")
                }
                extra = [
                    (s, e, k) for s, e, k in guard.spans(text, platform) if (s, e) not in twitter
                ]
                if extra:
                    changed.append(", ".join(f"{k}: {text[s:e]!r}" for s, e, k in extra))
    print(f"\nbundled real posts: {posts:,}; changed beyond twitter-text's rules: {len(changed)}")
    if show:
        for line in changed:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=SETS)
    parser.add_argument("--show", action="store_true", help="print every leak and change")
    args = parser.parse_args()
    for path in args.data:
        scored = score(path, Pseudonymiser(seed=0))
        print(f"\n{path.name}")
        print(f"{'kind':<8} {'masked':>7} {'of':>4} {'recall':>7} {'shape kept':>11}")
        for kind, (found, total) in scored.recall().items():
            shaped = scored.shaped[kind]
            print(f"{kind:<8} {found:>7} {total:>4} {found / total:>7.2f} {shaped:>7} / {found}")
        ordinary = sum(1 for _ in path.open(encoding="utf-8")) - 1 - sum(scored.total.values())
        print(f"ordinary posts changed (false positives): {len(scored.changed)} of {ordinary}")
        if args.show:
            for line in scored.leaks + scored.misshaped + scored.changed:
                print(f"  {line}")
    beyond_twitter_text(args.show)


if __name__ == "__main__":
    main()
