"""The privacy guard on two labelled sets of identifiers: recall per kind (handles of any script,
plain and obfuscated e-mails, phone numbers in national and international formats, URLs), how
many masked identifiers kept their shape (the text around them unchanged, a handle's `@` or
`u/` kept), and how many ordinary posts it changed (false positives).

- `tests/data/privacy_identifiers.csv`: the development set, written alongside the rules (in-sample);
- `tests/data/privacy_identifiers_frozen.csv`: written before the rules were last changed and
  frozen since (out of sample).

    .venv/bin/python benchmarks/privacy_guard.py [--data FILE ...] [--show]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpsynth.stages.prompts.guard import Pseudonymiser
from mpsynth.testing.identifiers import score

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
SETS = [DATA / "privacy_identifiers.csv", DATA / "privacy_identifiers_frozen.csv"]


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
            for line in scored.leaks + scored.changed:
                print(f"  {line}")


if __name__ == "__main__":
    main()
