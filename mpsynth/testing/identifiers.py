"""Scoring the privacy guard on a labelled set of identifiers (a CSV of kind, platform, text and the
identifier it holds; kind `none` for ordinary posts): recall per kind, placeholders that kept the
identifier's shape, and the ordinary posts the guard changed. Two sets ship in `tests/data/`:
`privacy_identifiers.csv`, the development set the rules were written against, and
`privacy_identifiers_frozen.csv`, written before the rules it measures were changed and never tuned
on (`benchmarks/privacy_guard.py` reports both)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import regex

SIGN = re.compile(r"^(?:/?u/|[@＠])")
# the words of an identifier that say who it is (the scaffolding around them says nothing)
PIECE = regex.compile(r"[\p{L}\p{N}\p{M}]+")
SCAFFOLD = {
    "http", "https", "www", "com", "org", "net", "de", "co", "uk", "at", "dot", "punkt", "user",
    "example", "gmail", "yahoo", "outlook", "hotmail", "mail", "web", "gmx",
}  # fmt: skip


def pieces(kind: str, identifier: str) -> list[str]:
    """What must not reach the provider: the digits of a phone number; the words of a handle, of
    an e-mail's mailbox and domain, of a URL's host and path (three characters or more, leaving
    out schemes, `www`, top-level domains and mail providers that name nobody)."""
    if kind == "phones":
        return [re.sub(r"\D", "", identifier)]
    words = [w.casefold() for w in PIECE.findall(SIGN.sub("", identifier))]
    return [w for w in words if len(w) >= 3 and w not in SCAFFOLD]


@dataclass
class Scored:
    """Per kind: identifiers masked, of how many, and how many of the masked kept their shape (the
    text around them unchanged, a handle's sign kept); the ordinary posts the guard changed."""

    masked: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    shaped: Counter = field(default_factory=Counter)
    changed: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    misshaped: list[str] = field(default_factory=list)

    def recall(self) -> dict[str, tuple[int, int]]:
        return {kind: (self.masked[kind], self.total[kind]) for kind in sorted(self.total)}


def replacement(
    text: str, identifier: str, masked: str, guard: Callable[[str, str], str], platform: str
) -> tuple[str, bool]:
    """What took the identifier's place in `masked`, and whether the text around it is as the
    guard leaves that text alone (so a second identifier in the post may change; when the text
    around is not intact, the whole masked text is searched for leaks)."""
    start = text.index(identifier)
    before, after = text[:start], text[start + len(identifier) :]
    before, after = (
        guard(before, platform) if before else "",
        guard(after, platform) if after else "",
    )
    intact = (
        masked.startswith(before)
        and masked.endswith(after)
        and len(masked) >= len(before) + len(after)
    )
    return (masked[len(before) : len(masked) - len(after)] if intact else masked), intact


def leaked(kind: str, identifier: str, replaced: str) -> bool:
    if kind == "phones":
        return pieces(kind, identifier)[0] in re.sub(r"\D", "", replaced)
    return any(piece in replaced.casefold() for piece in pieces(kind, identifier))


def score(path: Path, guard: Callable[[str, str], str]) -> Scored:
    scored = Scored()
    with Path(path).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            masked = guard(row["text"], row["platform"])
            kind = row["kind"]
            if kind == "none":
                if masked != row["text"]:
                    scored.changed.append(f"{row['text']!r} -> {masked!r}")
                continue
            scored.total[kind] += 1
            replaced, intact = replacement(
                row["text"], row["identifier"], masked, guard, row["platform"]
            )
            if leaked(kind, row["identifier"], replaced):
                scored.leaks.append(f"{kind}: {row['text']!r} -> {masked!r}")
                continue
            scored.masked[kind] += 1
            sign = SIGN.match(row["identifier"])
            shaped = intact and (sign is None or replaced.startswith(sign.group()))
            scored.shaped[kind] += shaped
            if not shaped:
                scored.misshaped.append(f"{kind}: {row['text']!r} -> {masked!r}")
    return scored
