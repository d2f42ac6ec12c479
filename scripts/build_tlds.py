"""Write mpsynth/metrics/tlds.txt, the top-level domains a bare link may end in, from twitter-text's
TLD conformance file (Apache-2.0; a copy is tests/data/twitter-text/tlds.yml).

    .venv/bin/python scripts/build_tlds.py tests/data/twitter-text/tlds.yml
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "mpsynth" / "metrics" / "tlds.txt"
HEADER = """\
# Top-level domains, one per line: "country" and "generic" sections. Taken from twitter-text's TLD
# conformance file (https://github.com/twitter/twitter-text, conformance/tld_lib.yml; Copyright
# Twitter, Inc., Apache License 2.0). Rebuild with scripts/build_tlds.py.
"""


def main(source: str) -> None:
    tests = yaml.safe_load(Path(source).read_text(encoding="utf-8"))["tests"]
    lines = [HEADER.rstrip("\n")]
    for section in ("country", "generic"):
        tlds = sorted({case["text"].rsplit(".", 1)[1].lower() for case in tests[section]})
        lines += [f"[{section}]", *tlds]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{OUT}: {sum(1 for line in lines if line and line[0] not in '#[')} TLDs")


if __name__ == "__main__":
    main(sys.argv[1])
