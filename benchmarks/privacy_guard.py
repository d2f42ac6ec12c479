"""The privacy guard on a labelled set of tricky identifiers (tests/data/privacy_identifiers.csv):
recall per kind (handles of any script, plain and obfuscated e-mails, phone numbers in national
and international formats, URLs) and how many ordinary posts it changed (false positives).

    .venv/bin/python benchmarks/privacy_guard.py [--data FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpsynth.stages.prompts.guard import Pseudonymiser
from mpsynth.testing.identifiers import score

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "privacy_identifiers.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    recall, changed = score(args.data, Pseudonymiser(seed=0))
    print(f"{'kind':<8} {'masked':>7} {'of':>4} {'recall':>7}")
    for kind, (found, total) in recall.items():
        print(f"{kind:<8} {found:>7} {total:>4} {found / total:>7.2f}")
    print(f"ordinary posts changed (false positives): {len(changed)}")
    for line in changed:
        print(f"  {line}")


if __name__ == "__main__":
    main()
