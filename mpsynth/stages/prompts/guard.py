"""The privacy guard: few-shot examples pseudonymised before a request leaves for a hosted model.

@handles (each platform's handle rule), URLs (with or without a scheme; twitter-text's rules, as
the lexical features count them), e-mail addresses and phone numbers (libphonenumber's matcher)
become placeholders of the same shape: `@user_1f3a9c0b`, `https://example.com/1f3a9c0b`,
`user_1f3a9c0b@example.com`, `555-0142`. A placeholder is a keyed hash of the value, so the same
real handle is the same pseudonym in every prompt of a run (the model still sees who is
addressed twice), and the prompts, hence the request ids, are the same when the run resumes. The
key comes from the run's seed; only the provider sees placeholders, and nothing maps them back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field

import phonenumbers

from mpsynth.metrics.extraction import entity_spans

KINDS = ("emails", "urls", "handles", "phones")  # on overlap the earlier kind wins
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SCHEME = re.compile(r"(?i)^(https?://)")
HOSTED = ("openai", "anthropic", "gemini")


def guard_applies(setting: str, provider_kind: str) -> bool:
    """Whether prompts for this provider are pseudonymised (`prompts.privacy_guard`)."""
    return setting == "on" or (setting == "auto" and provider_kind in HOSTED)


@dataclass
class Pseudonymiser:
    seed: int
    phone_region: str = "US"
    masked: Counter = field(default_factory=Counter)  # kind -> occurrences replaced
    distinct: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    _done: dict = field(default_factory=dict, repr=False)  # (text, platform) -> (masked, values)

    def __post_init__(self) -> None:
        self._key = hashlib.sha256(f"mpsynth privacy guard {self.seed}".encode()).digest()

    def token(self, kind: str, value: str) -> str:
        digest = hmac.new(self._key, f"{kind}\0{value.casefold()}".encode(), hashlib.sha256)
        return digest.hexdigest()[:8]

    def placeholder(self, kind: str, value: str) -> str:
        token = self.token(kind, value)
        match kind:
            case "handles":
                return f"{value[0]}user_{token}"  # the sign as written (@ or ＠)
            case "emails":
                return f"user_{token}@example.com"
            case "urls":
                scheme = SCHEME.match(value)
                return f"{scheme.group(1) if scheme else ''}example.com/{token}"
            case _:  # phones: a number reserved for fiction (555-0100 to 555-0199)
                return f"555-01{int(token, 16) % 100:02d}"

    def spans(self, text: str, platform: str | None) -> list[tuple[int, int, str]]:
        found = [(m.start(), m.end(), "emails") for m in EMAIL.finditer(text)]
        for start, end, kind in entity_spans(text, platform):
            if kind in ("urls", "mentions"):
                found.append((start, end, "handles" if kind == "mentions" else "urls"))
        found += [
            (m.start, m.end, "phones")
            for m in phonenumbers.PhoneNumberMatcher(text, self.phone_region)
        ]
        chosen: list[tuple[int, int, str]] = []
        for span in sorted(found, key=lambda s: (KINDS.index(s[2]), s[0])):
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

    def summary(self) -> dict[str, int]:
        out = {}
        for kind in KINDS:
            out[f"masked {kind}"] = self.masked[kind]
            out[f"masked distinct {kind}"] = len(self.distinct[kind])
        return out
