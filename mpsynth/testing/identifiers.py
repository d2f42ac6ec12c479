"""Scoring the privacy guard on a labelled set of identifiers (a CSV of kind, platform, text and the
identifier it holds; kind `none` for ordinary posts): recall per kind, and the ordinary posts the
guard changed. The test suite and `benchmarks/privacy_guard.py` read `tests/data/privacy_identifiers.csv`."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path


def core(kind: str, identifier: str) -> str:
    """What must not reach the provider: the name of a handle, the mailbox of an e-mail address,
    the digits of a phone number, the URL itself."""
    match kind:
        case "handles":
            return re.sub(r"^(?:/?u/|[@＠])", "", identifier)
        case "emails":
            return re.split(
                r"\s*(?:@|[\[({<]\s*(?:at|@)\s*[\])}>]|\s+at\s+)", identifier, flags=re.I
            )[0]
        case "phones":
            return re.sub(r"\D", "", identifier)
        case _:
            return identifier


def leaked(kind: str, identifier: str, masked: str) -> bool:
    if kind == "phones":
        return core(kind, identifier) in re.sub(r"\D", "", masked)
    return identifier in masked or core(kind, identifier) in masked


def score(
    path: Path, guard: Callable[[str, str], str]
) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """(kind -> (masked, total), the ordinary posts the guard changed, as `before -> after`)."""
    found, total, changed = Counter(), Counter(), []
    with Path(path).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            masked = guard(row["text"], row["platform"])
            if row["kind"] == "none":
                if masked != row["text"]:
                    changed.append(f"{row['text']!r} -> {masked!r}")
                continue
            total[row["kind"]] += 1
            found[row["kind"]] += not leaked(row["kind"], row["identifier"], masked)
    return {kind: (found[kind], total[kind]) for kind in sorted(total)}, changed
