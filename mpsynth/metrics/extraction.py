"""Hashtags, mentions, URLs and cashtags by the rules twitter-text publishes for every port (its
extraction conformance suite: tests/data/twitter-text/extract.yml), plus the platforms' own handle
rules the suite does not cover. One extraction gives every count, set and per-post value.

Vectorised: a batch's texts are joined with newlines and each pattern runs once over the joined text
(a newline is a boundary to every rule, so no entity spans two posts); match positions map back to
posts by binary search. Only posts that hold the entity's sign ("#", "@", "$", ".") are joined, a
cheap Arrow filter first. Rules as in twitter-text:

- hashtag: "#" or "＃" after a start, a variation selector or any character that is not a hashtag
  character or "&"; then letters, marks, digits, "_" and a few joiners, at least one letter or mark;
  not followed by another hash sign or "://".
- mention: "@" or "＠" not after a letter, digit or one of _!#$%&*@ (but "RT@x" and "RT:@x" count);
  1-20 of [A-Za-z0-9_], optionally a "/list"; not followed by "@", an accented Latin letter or "://".
  Platform handles: YouTube handles take 3-30 letters (any script), digits, "_", "-" and ".";
  Instagram handles 1-30 of [A-Za-z0-9_.], not ending in ".".
- cashtag: "$" at a start or after a space, 1-6 letters with an optional ".xx" or "_xx", then a
  space, punctuation or the end.
- URL: with http(s):// or bare ("example.com/x", "bit.ly"), a domain ending in a known top-level
  domain (mpsynth/metrics/tlds.txt), optional port, path (balanced parentheses, no trailing
  punctuation) and query. A bare domain must be ASCII and not follow "-", "_", "." or "/". t.co links
  end at their slug.
- Hashtags, mentions and cashtags inside a URL are not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import regex

KINDS = ("hashtags", "mentions", "urls", "cashtags")

SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
PUNCT = r"!'#%&()*+,\\\-./:;<=>?@\[\]^_{|}~$"
INVALID = "\ufffe\ufeff\uffff\u202a-\u202e"
LATIN_ACCENTS = (
    "\xc0-\xd6\xd8-\xf6\xf8-\xff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259\u025b\u0263\u0268"
    "\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
CYRILLIC = "\u0400-\u04ff"

HASHTAG_CHAR = (
    r"[\p{L}\p{M}\p{Nd}_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0"
    r"\u30fb\u3003\u0f0b\u0f0c\u00b7]"
)
# Every pattern starts at its sign, the character before it checked by a lookbehind, so the engine
# skips to the next sign instead of trying a match at every position.
HASHTAG_CHAR_INNER = HASHTAG_CHAR[1:-1]
HASHTAG = regex.compile(
    rf"(?:(?<![{HASHTAG_CHAR_INNER}&])|(?<=[\ufe0e\ufe0f]))[#＃](?![\ufe0f\u20e3])"
    rf"(?>(?P<value>{HASHTAG_CHAR}*[\p{{L}}\p{{M}}]{HASHTAG_CHAR}*))(?![#＃]|://)",
    regex.MULTILINE | regex.DOTALL,
)
MENTION_BEFORE = r"(?:(?<![a-zA-Z0-9_!#$%&*@＠])|(?<=(?:^|[^a-zA-Z0-9_+~.\-])(?:rt|RT|rT|Rt):?))"
MENTION_AFTER = rf"(?![@＠{LATIN_ACCENTS}]|://)"
MENTIONS = {
    "twitter": regex.compile(
        rf"{MENTION_BEFORE}[@＠]"
        rf"(?>(?P<value>[a-zA-Z0-9_]{{1,20}})(?:/[a-zA-Z][a-zA-Z0-9_\-]{{0,24}})?){MENTION_AFTER}",
        regex.MULTILINE,
    ),
    # YouTube handles: 3-30 characters, letters of any script, digits, "_", "-" and "."
    "youtube": regex.compile(
        r"(?<![\p{L}\p{M}\p{Nd}_.\-@＠])[@＠](?P<value>[\p{L}\p{M}\p{Nd}_\-.]{3,30})"
        r"(?<![.\-])(?![\p{L}\p{M}\p{Nd}_@＠]|://)",
        regex.MULTILINE,
    ),
    # Instagram handles: 1-30 of letters, digits, "_" and ".", never ending in "."
    "instagram": regex.compile(
        r"(?<![a-zA-Z0-9_.@＠])[@＠](?P<value>[a-zA-Z0-9_.]{0,29}[a-zA-Z0-9_])"
        r"(?![a-zA-Z0-9_@＠]|\.[a-zA-Z0-9_]|://)",
        regex.MULTILINE,
    ),
}
CASHTAG = regex.compile(
    rf"(?<![^{SPACES}])\$(?P<value>[a-z]{{1,6}}(?:[._][a-z]{{1,2}})?)(?=$|\s|[{PUNCT}])",
    regex.IGNORECASE | regex.MULTILINE,
)
# the sign a post must hold for an entity of each kind to be possible
# (atomic groups above: a rejected entity is not shortened until the check after it passes)
SIGNS = {"hashtags": "[#＃]", "mentions": "[@＠]", "cashtags": r"\$", "urls": r"\."}


@cache
def top_level_domains() -> dict[str, list[str]]:
    """{"country": [...], "generic": [...]} from the packaged list."""
    sections: dict[str, list[str]] = {}
    current = None
    text = resources.files("mpsynth.metrics").joinpath("tlds.txt").read_text("utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif current is not None:
            current.append(line)
    return sections


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


@dataclass(frozen=True)
class UrlPatterns:  # Python's re: no Unicode properties needed, and its literal alternations
    url: re.Pattern  # (the TLD list) run several times faster than the regex module's
    ascii_domain: re.Pattern
    tco: re.Pattern


@cache
def url_patterns() -> UrlPatterns:
    tlds = top_level_domains()
    end = r"(?=[^0-9a-z@+\-]|$)"
    gtld = rf"(?:(?:{_alternation(tlds['generic'])}){end})"
    cctld = rf"(?:(?:{_alternation(tlds['country'])}){end})"
    punycode = r"(?:xn--[\-0-9a-z]+)"
    dc = rf"[^{PUNCT}{SPACES}{INVALID}]"
    # a label: domain characters with inner "-" (and "_" in subdomains), then "."; possessive,
    # since a label cannot hold a ".", so giving characters back never helps a match
    subdomain = rf"(?:{dc}(?:[_\-]*+{dc})*+\.)"
    domain_name = rf"(?:{dc}(?:-*+{dc})*+\.)"
    domain = rf"(?:{subdomain}*{domain_name}(?:{gtld}|{cctld}|{punycode}))"
    pc_ = rf"[a-z{CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{LATIN_ACCENTS}]"
    balanced = rf"\((?:{pc_}+|(?:{pc_}*\({pc_}+\){pc_}*))\)"
    path_end = rf"(?:[+\-a-z{CYRILLIC}0-9=_#/{LATIN_ACCENTS}]|{balanced})"
    path = rf"(?:(?:{pc_}*(?:{balanced}{pc_}*)*{path_end})|(?:@{pc_}+/))"
    query = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
    query_end = r"[a-z0-9\-_&=#/]"
    flags = re.MULTILINE  # the text is lower-cased (ASCII) first: see url_spans
    return UrlPatterns(
        url=re.compile(
            rf"(?P<before>[^A-Za-z0-9@＠$#＃{INVALID}]|^)"
            rf"(?P<url>(?P<protocol>https?://)?(?P<domain>{domain})(?::[0-9]+)?"
            rf"(?P<path>/{path}*)?(?:\?{query}*{query_end})?)",
            flags,
        ),
        ascii_domain=re.compile(
            rf"(?:(?:[\-a-z0-9{LATIN_ACCENTS}]+)\.)+(?:{gtld}|{cctld}|{punycode})",
            flags,
        ),
        tco=re.compile(r"^https?://t\.co/([a-z0-9]+)"),
    )


MAX_URL_LENGTH = 4096
MAX_TCO_SLUG = 40


def _ascii_length(domain: str) -> int | None:
    """The domain's length in ASCII (punycode), None when it has no valid ASCII form."""
    try:
        return len(domain.encode("idna"))
    except UnicodeError:
        try:
            import idna

            return len(idna.encode(domain, uts46=True))
        except (ImportError, idna.IDNAError, UnicodeError):
            return None


WHITESPACE = re.compile(rf"[{SPACES}]")
# where a TLD may follow a dot: an ASCII run (the TLD must be all of it, given what may not follow
# a TLD) or a non-ASCII character (a TLD in another script may be a prefix of a longer run)
TLD_CANDIDATE = re.compile(r"\.(?:([a-z0-9@+\-]+)|[^\x00-\x7f])")


@cache
def known_tlds() -> frozenset[str]:
    return frozenset(tld for tlds in top_level_domains().values() for tld in tlds)


def url_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, url) of every URL in `text`, by twitter-text's rules.

    A URL holds a "." and a known TLD and no whitespace, so the full pattern runs only over the
    whitespace-delimited runs around such a dot (a run starts after whitespace, where the rules
    see the same boundary as in the whole text), not at every position of the text. The patterns
    run on a copy with ASCII letters lower-cased (same length, so spans carry over): matching
    case-insensitively would cost the TLD alternation its fast path."""
    patterns = url_patterns()
    known = known_tlds()
    # UTF-8 bytes of non-ASCII characters hold no ASCII letters: bytes.lower() changes A-Z only
    lowered = text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")
    found: list[tuple[int, int, str]] = []
    covered = -1
    for dot in TLD_CANDIDATE.finditer(lowered):
        if dot.start() < covered:
            continue  # inside a run already searched
        word = dot.group(1)
        if word is not None and word not in known and not word.startswith("xn--"):
            continue  # an ASCII TLD is the whole run of [a-z0-9@+-] after its dot
        begin = _run_start(lowered, dot.start())
        covered = _run_end(lowered, dot.start())
        found += [
            (begin + start, begin + stop, text[begin + start : begin + stop])
            for start, stop in _url_spans_in(lowered[begin:covered], patterns)
        ]
    return found


def _run_start(text: str, position: int) -> int:
    start = position
    while start > 0 and not WHITESPACE.match(text, start - 1):
        start -= 1
    return start


def _run_end(text: str, position: int) -> int:
    found = WHITESPACE.search(text, position)
    return found.start() if found else len(text)


def _url_spans_in(text: str, patterns: UrlPatterns) -> list[tuple[int, int]]:
    found = []
    for match in patterns.url.finditer(text):
        url, protocol, domain = match["url"], match["protocol"], match["domain"]
        start, end = match.start("url"), match.end("url")
        ascii_length = _ascii_length(domain)
        if not ascii_length:
            continue
        if len(protocol or "https://") + len(url) - len(domain) + ascii_length > MAX_URL_LENGTH:
            continue
        if protocol:
            tco = patterns.tco.match(url)
            if tco:
                if len(tco.group(1)) > MAX_TCO_SLUG:
                    continue
                end = start + len(tco.group(0))
            found.append((start, end))
            continue
        if match["before"] in ("-", "_", ".", "/"):
            continue
        last = None
        for ascii_match in patterns.ascii_domain.finditer(domain):
            last = (start + ascii_match.start(), start + ascii_match.end())
            found.append(last)
        if last is not None and match["path"]:
            found[-1] = (last[0], end)
    return found


@dataclass
class Extracted:
    """Per post, the entities found: counts always, values (the text of each) when asked for."""

    counts: dict[str, np.ndarray]
    values: dict[str, list[list[str]]] | None


def extract(
    texts: pa.Array | pa.ChunkedArray | list[str],
    platforms: pa.Array | pa.ChunkedArray | list[str] | None = None,
    values: bool = False,
) -> Extracted:
    """Hashtags, mentions, URLs and cashtags of every post. Mentions follow each post's platform
    rule (MENTIONS; Twitter's for the others)."""
    texts = _array(texts)
    n = len(texts)
    counts = {kind: np.zeros(n, dtype=np.int64) for kind in KINDS}
    found: dict[str, list[list[str]]] | None = (
        {kind: [[] for _ in range(n)] for kind in KINDS} if values else None
    )
    # every entity as (row, position in its post); URLs first: the others inside one do not count
    url_rows, joined, offsets = _joined(texts, SIGNS["urls"])
    spans = url_spans(joined)
    url_starts = np.array([start for start, _, _ in spans], dtype=np.int64)
    row_index = np.searchsorted(offsets, url_starts, "right") - 1
    url_row = url_rows[row_index]
    # URLs as intervals on one axis: row * STRIDE + position (posts are shorter than STRIDE)
    url_from = url_row * STRIDE + (url_starts - offsets[row_index])
    url_to = url_from + np.array([end - start for start, end, _ in spans], dtype=np.int64)
    _tally(url_row, [url for _, _, url in spans], counts["urls"], found and found["urls"])

    def run(kind: str, pattern, rows_filter: np.ndarray | None = None) -> None:
        rows, text, starts = _joined(texts, SIGNS[kind], rows_filter)
        matches = [(m.start("value") - 1, m["value"]) for m in pattern.finditer(text)]
        if not matches:
            return
        signs = np.array([position for position, _ in matches], dtype=np.int64)
        index = np.searchsorted(starts, signs, "right") - 1
        row = rows[index]
        keep = ~_inside(row * STRIDE + (signs - starts[index]), url_from, url_to)
        kept = [value for (_, value), k in zip(matches, keep, strict=True) if k]
        _tally(row[keep], kept, counts[kind], found and found[kind])

    run("hashtags", HASHTAG)
    run("cashtags", CASHTAG)
    for rule, rows_filter in _mention_rules(platforms, n).items():
        run("mentions", MENTIONS[rule], rows_filter)
    return Extracted(counts, found)


STRIDE = 1 << 32


def _inside(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each point lies in one of the intervals [starts, ends) (sorted, disjoint)."""
    if not len(starts):
        return np.zeros(len(points), dtype=bool)
    index = np.searchsorted(starts, points, "right") - 1
    return (index >= 0) & (points < ends[np.maximum(index, 0)])


def _tally(rows: np.ndarray, values: list[str], counts: np.ndarray, found) -> None:
    np.add.at(counts, rows, 1)
    if found is not None:
        for row, value in zip(rows.tolist(), values, strict=True):
            found[row].append(value)


def _array(texts) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        return texts.combine_chunks()
    if isinstance(texts, pa.Array):
        return texts
    return pa.array(texts, pa.string())


def _mention_rules(platforms, n: int) -> dict[str, np.ndarray | None]:
    """Mention rule -> the rows it applies to (None: every row)."""
    if platforms is None:
        return {"twitter": None}
    names = np.asarray(_array(platforms).to_pylist(), dtype=object)
    rules: dict[str, np.ndarray | None] = {}
    special = np.zeros(n, dtype=bool)
    for rule in MENTIONS:
        if rule == "twitter":
            continue
        mine = names == rule
        if mine.any():
            rules[rule] = mine
            special |= mine
    if not special.any():
        return {"twitter": None}
    if (~special).any():
        rules["twitter"] = ~special
    return rules


def _joined(
    texts: pa.Array, sign: str, rows_filter: np.ndarray | None = None
) -> tuple[np.ndarray, str, np.ndarray]:
    """(rows, joined text, start offset of each row in it) of the posts holding `sign`."""
    holds = pc.match_substring_regex(texts, sign).fill_null(False).to_numpy(zero_copy_only=False)
    if rows_filter is not None:
        holds &= rows_filter
    rows = np.flatnonzero(holds)
    chosen = texts.take(pa.array(rows, pa.int64())) if len(rows) < len(texts) else texts
    lengths = pc.utf8_length(chosen).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(rows), dtype=np.int64)
    if len(rows):
        offsets[1:] = np.cumsum(lengths[:-1] + 1)
    return rows, "\n".join(chosen.to_pylist()), offsets


def entity_spans(text: str, platform: str | None = None) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every entity of one post, in order, by the rules `extract` counts
    with: a mention's span is its sign and handle, a hashtag's or cashtag's its sign and value."""
    urls = [(start, end, "urls") for start, end, _ in url_spans(text)]
    found = list(urls)
    mention = MENTIONS.get(platform or "", MENTIONS["twitter"])
    for kind, pattern in (("hashtags", HASHTAG), ("cashtags", CASHTAG), ("mentions", mention)):
        for match in pattern.finditer(text):
            sign = match.start("value") - 1
            if not any(start <= sign < end for start, end, _ in urls):
                found.append((sign, match.end("value"), kind))
    return sorted(found)


def entities(text: str, platform: str | None = None) -> dict[str, list[str]]:
    """The entities of one post, in order of appearance (for tests and the report)."""
    result = extract([text], None if platform is None else [platform], values=True)
    assert result.values is not None
    return {kind: result.values[kind][0] for kind in KINDS}
