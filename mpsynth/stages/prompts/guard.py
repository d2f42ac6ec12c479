"""The privacy guard: few-shot examples pseudonymised before a request leaves for a hosted model.

A guard errs toward masking: what could identify a person goes, whether or not a metric would count
it. @handles of any script (letters, digits and marks of every alphabet, with `_ . -` inside; each
platform's own handle rule as a floor) and Reddit's u/name; URLs (with or without a scheme;
twitter-text's rules); e-mail addresses, plain and obfuscated, and phone numbers (both found as
`detect.py` says) become placeholders of the same shape: `@user_1f3a9c0b` (`u/user_1f3a9c0b` for a
Reddit name), `https://example.com/1f3a9c0b`, `user_1f3a9c0b@example.com`, `555-0142`. A
placeholder is a keyed hash of the value, so the same real handle is the same pseudonym in every
prompt of a run (the model still sees who is addressed twice), and the prompts, hence the request
ids, are the same when the run resumes. The key comes from the run's seed; only the provider sees placeholders, and nothing
maps them back.

Cue words (a labelled run's words that set a class apart) are words of the real posts, so one can
be part of an identifier: `jdoe_1984` from `mail jdoe_1984@gmail.com`. `learn_cues` finds every
identifier the guard masks around each word's occurrences in the posts. A word seen mostly inside
identifiers, and inside fewer than `SHARED_BY` distinct ones, names someone: it becomes the
placeholder of the identifier it is most often part of (the same one the examples show). A word
shared by many identifiers (`com`, `https`) singles out nobody, and one seen mostly outside them
(`watch`, also in a few YouTube links) is a word; both stay.

`benchmarks/privacy_guard.py` measures recall per kind on three labelled sets of identifiers (one
written alongside the rules, two before their last change) and counts the ordinary posts changed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex

from mpsynth.metrics.extraction import entity_spans
from mpsynth.stages.prompts.detect import PHONE_REGIONS, email_spans, phone_spans

KINDS = ("emails", "urls", "handles", "phones")  # on overlap the earlier kind wins
CUE_WORDS = "cue words"  # counted beside the kinds: cue words that became a placeholder
NAME = r"[\p{L}\p{N}\p{M}_]"  # a letter, digit or mark of any script, or _
# a handle of any script: the sign, then name characters with . or - only inside
# (at least one letter: @173.16 is a price, not a person)
HANDLE = regex.compile(rf"[@＠](?=[\p{{N}}.\-]*[\p{{L}}\p{{M}}_]){NAME}+(?:[.\-]{NAME}+)*")
REDDIT_USER = regex.compile(rf"(?<![\p{{L}}\p{{N}}_/])/?u/{NAME}+(?:-{NAME}+)*")
SIGN = regex.compile(r"^(?:/?u/|[@＠])")
SCHEME = re.compile(r"(?i)^(https?://)")
SHARED_BY = 5  # a cue word inside this many distinct identifiers names no one of them
HOSTED = ("openai", "anthropic", "gemini")


def guard_applies(setting: str, provider_kind: str) -> bool:
    """Whether prompts for this provider are pseudonymised (`prompts.privacy_guard`)."""
    return setting == "on" or (setting == "auto" and provider_kind in HOSTED)


@dataclass
class Pseudonymiser:
    seed: int
    phone_region: str = "US"
    masked: Counter = field(default_factory=Counter)  # kind -> occurrences replaced
    distinct: dict[str, set[str]] = field(
        default_factory=lambda: {k: set() for k in (*KINDS, CUE_WORDS)}
    )
    _done: dict = field(default_factory=dict, repr=False)  # (text, platform) -> (masked, values)
    _cues: dict[str, str] = field(default_factory=dict, repr=False)  # word -> its stand-in

    def __post_init__(self) -> None:
        self._key = hashlib.sha256(f"mpsynth privacy guard {self.seed}".encode()).digest()

    def token(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\0{value.casefold()}".encode(), hashlib.sha256)
        return digest.hexdigest()[:8]

    def placeholder(self, kind: str, value: str) -> str:
        token = self.token(kind, value)
        match kind:
            case "handles":
                sign = SIGN.match(value)  # as written: @, ＠, u/ or /u/
                return f"{sign.group() if sign else '@'}user_{token}"
            case "emails":
                return f"user_{token}@example.com"
            case "urls":
                scheme = SCHEME.match(value)
                return f"{scheme.group(1) if scheme else ''}example.com/{token}"
            case _:  # phones: a number reserved for fiction (555-0100 to 555-0199)
                return f"555-01{int(token, 16) % 100:02d}"

    def spans(self, text: str, platform: str | None) -> list[tuple[int, int, str]]:
        found = [(start, end, "emails") for start, end in email_spans(text)]
        for start, end, kind in entity_spans(text, platform):
            if kind in ("urls", "mentions"):
                found.append((start, end, "handles" if kind == "mentions" else "urls"))
        if "@" in text or "＠" in text:
            found += [(m.start(), m.end(), "handles") for m in HANDLE.finditer(text)]
        if "u/" in text:
            found += [(m.start(), m.end(), "handles") for m in REDDIT_USER.finditer(text)]
        regions = (self.phone_region, *PHONE_REGIONS)
        found += [(start, end, "phones") for start, end in phone_spans(text, regions)]
        chosen: list[tuple[int, int, str]] = []
        # by kind, then position, the longer of two spans at one position first
        for span in sorted(found, key=lambda s: (KINDS.index(s[2]), s[0], s[0] - s[1])):
            if all(span[1] <= other[0] or span[0] >= other[1] for other in chosen):
                chosen.append(span)
        return sorted(chosen)

    def __call__(self, text: str, platform: str | None = None) -> str:
        """The text with every handle, e-mail, phone number and URL replaced (each call counted:
        the counts say how many were kept out of the prompts sent)."""
        done = self._done.get((text, platform))
        if done is None:
            pieces, values, last = [], [], 0
            for start, end, kind in self.spans(text, platform):
                value = text[start:end]
                pieces += [text[last:start], self.placeholder(kind, value)]
                values.append((kind, value.casefold()))
                last = end
            pieces.append(text[last:])
            done = self._done[(text, platform)] = ("".join(pieces), values)
        for kind, value in done[1]:
            self.masked[kind] += 1
            self.distinct[kind].add(value)
        return done[0]

    def learn_cues(self, words: list[str], posts: Iterable[tuple[str, str | None]]) -> None:
        """Judge each cue word not judged before against the (text, platform) posts it may come
        from: where it lies inside an identifier the guard masks, and how many distinct ones."""
        pending = sorted({w for w in words if w not in self._cues}, key=len, reverse=True)
        if not pending:
            return
        pattern = regex.compile(
            r"(?<![\p{L}\p{N}_])(?:" + "|".join(map(regex.escape, pending)) + r")(?![\p{L}\p{N}_])",
            regex.IGNORECASE,
        )
        inside: dict[str, Counter] = {w.casefold(): Counter() for w in pending}
        outside: Counter = Counter()
        for text, platform in posts:
            hits = [(m.start(), m.end(), m.group().casefold()) for m in pattern.finditer(text)]
            if not hits:
                continue
            spans = self.spans(text, platform)
            for start, end, word in hits:
                holder = [(k, text[a:b]) for a, b, k in spans if a <= start and end <= b]
                if holder:
                    kind, value = holder[0]
                    inside[word][(kind, value.casefold())] += 1
                else:
                    outside[word] += 1
        for word in pending:
            found = inside[word.casefold()]
            mostly_inside = sum(found.values()) >= outside[word.casefold()]
            if found and mostly_inside and len(found) < SHARED_BY:
                (kind, value), _ = min(found.items(), key=lambda item: (-item[1], item[0]))
                self._cues[word] = self.placeholder(kind, value)
            else:
                self._cues[word] = word

    def cues(self, words: list[str]) -> list[str]:
        """The words as a prompt may show them (judged by `learn_cues` first): a word that names
        someone is its identifier's placeholder, each placeholder once (each counted)."""
        shown = []
        for word in words:
            stand_in = self._cues[word]
            if stand_in != word:
                self.masked[CUE_WORDS] += 1
                self.distinct[CUE_WORDS].add(word.casefold())
            if stand_in not in shown:
                shown.append(stand_in)
        return shown

    def summary(self) -> dict[str, int]:
        out = {}
        for kind in (*KINDS, CUE_WORDS):
            out[f"masked {kind}"] = self.masked[kind]
            out[f"masked distinct {kind}"] = len(self.distinct[kind])
        return out
