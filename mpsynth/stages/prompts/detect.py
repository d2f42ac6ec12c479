"""Where a text holds an e-mail address or a phone number, for the privacy guard.

E-mail addresses, plain (`name@domain.tld`, and `name@gmail` without its top-level domain at the
mail providers everyone knows) or obfuscated: the at and the dots written out, bracketed or spaced
(`anna [dot] berg [at] uni-hamburg [dot] de`, `max(at)firma(punkt)de`, `jsmith at example dot org`,
`olga собака mail.ru`). A domain must end in a real top-level domain (the Public Suffix List, as
`publicsuffixlist` ships it) or be a known mail provider. A bare word `at` is the at of an address
only when the rest says so: `AT` in capitals, a mailbox with a digit or `_ . + -`, or dots written
out with no stop word at the seams (`look at this dot com` is prose).

Phone numbers: libphonenumber's matcher for the run's region, then any digit run of phone shape
(groups split by spaces, dots, dashes or a slash, an optional +country code and (area code)) that
is a valid number in one of many countries' national formats, or has 10 to 15 digits. A run is
not a phone number when what precedes it names another kind of number (`ISBN`, `order`,
`invoice`, `#`, `timestamp`, ...), when it is a checksum-valid ISBN-13 (`python-stdnum`), an
epoch time in seconds or milliseconds, a count in thousands groups (`12 345 678`, `1.234.567`), a
range (`15000-25000`), a list of numbers (a group of one digit after the first, five or more
groups of one or two digits not led by a 0, slashes between more than an area code and its
number: `5 12 23 34 45`, `951/980/1038`), or an IPv4 address;
a phone word just before it (`call`, `tel`, `Handy`, `WhatsApp`, `звоните`, `電話`, ...) outweighs
all of these.
"""

from __future__ import annotations

import re
from functools import cache

import phonenumbers
import regex
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from stdnum import isbn

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
PROVIDERS = frozenset([
    "gmail", "googlemail", "yahoo", "hotmail", "outlook", "live", "msn", "icloud", "aol", "gmx",
    "web", "proton", "protonmail", "yandex", "mail", "qq", "163", "126", "naver", "daum", "posteo",
    "seznam", "libero", "orange", "t-online", "freenet", "wp", "o2", "rediffmail", "zoho",
])  # fmt: skip
PROVIDER_EMAIL = regex.compile(
    rf"(?<![\p{{L}}\p{{N}}_.+-])[\p{{L}}\p{{N}}_.+-]+@(?:{'|'.join(sorted(PROVIDERS))})(?![\p{{L}}\p{{N}}.@-])",
    regex.IGNORECASE,
)
# the at and the dot written out: bracketed, spaced, or as a word
_BRACKETED_AT = r"\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*"
_WORD_AT = r"\s+(?:at|собака)\s+"
_DOT_WORDS = r"(?:dot|punkt|tečka|punto|ponto|point)"
_DOT = rf"(?:\.|\s*[\[({{<]\s*(?:{_DOT_WORDS}|\.)\s*[\])}}>]\s*|\s+{_DOT_WORDS}\s+|\s+\.\s+)"
_PART = r"[\p{L}\p{N}\p{M}_+\-]+"
OBFUSCATED_EMAIL = regex.compile(
    rf"(?<![\p{{L}}\p{{N}}\p{{M}}_.+\-])(?P<local>{_PART}(?:{_DOT}{_PART})*)"
    rf"(?P<at>{_BRACKETED_AT}|{_WORD_AT}|\s+@\s+)"
    rf"(?P<domain>[\p{{L}}\p{{N}}\-]+(?:{_DOT}[\p{{L}}\p{{N}}\-]+)*)(?![\p{{L}}\p{{N}}])",
    regex.IGNORECASE,
)
DOT_SPLIT = regex.compile(_DOT, regex.IGNORECASE)
DOT_WORD = regex.compile(rf"^{_DOT_WORDS}$", regex.IGNORECASE)  # `home dot dot`: no domain
USERNAME_LIKE = re.compile(r"[\d_.+\-]")

# a run of digits of phone shape: an optional +country code and (area code), groups of digits
PHONE_RUN = regex.compile(
    r"(?<![\p{L}\p{N}+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d(?:[\s.\-/]?\d){6,16}(?![\p{L}\p{N}])"
)
NOT_PHONES = re.compile(
    r"^(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|\d{4}\s*[-/]\s*\d{4}"  # dates, years
    r"|\d{1,3}(?:\.\d{1,3}){3})$"  # IPv4
)
AREA_SLASH = re.compile(r"^\(?0\d{1,4}\)?\s?/\s?[\d\s\-]+$")  # an area code, then the number
DECIMAL = re.compile(r"\.\d{5,}")  # 43.613000: a decimal number, not a group of a phone number
THOUSANDS = re.compile(r"^\d{1,3}(?:([ .])\d{3})(?:\1\d{3})*$")
RANGE = re.compile(r"^[1-9]\d{3,}(?:-[1-9]\d{3,})+$")  # 15000-25000: no phone number reads so
EPOCH = re.compile(r"^1\d{9}(?:\d{3})?$")  # 2001-09-09 to 2033-05-18, in seconds or milliseconds
PHONE_WORDS = regex.compile(
    r"(?i)(?:\b(?:tel|tél|tlf|phone|call|calling|ring|text|sms|mob|mobile|mobil|cell|cel|handy|"
    r"whatsapp|wa|zap|fax|hotline|contact|kontakt|appelez|appel|portable|llam\w*|chiam\w*|"
    r"bel|ruf|anruf\w*|telefon\w*|tel[eé]fono|(?:za)?dzwo\w*|ligue|m-pesa)\b|звон\w*|тел\b|電話|电话|"
    r"手机|携帯|연락처|전화)[\s.:\-]*(?:\S+\s+){0,3}$"
)
NUMBER_LABELS = regex.compile(
    r"(?i)(?:\b(?:isbn(?:-1[03])?|ean|upc|gtin|barcode|order|orders|invoice|inv|rechnung|bestell\w*|"
    r"ticket|part|serial|sku|tracking|shipment|sendung\w*|pmid|doi|arxiv|case|aktenzeichen|"
    r"patent|timestamp|ts|created_at|epoch|unix|id|nr|no)\b|#)[\s.:=\-#]*(?:\S+\s+){0,2}$"
)
# whose national formats a phone number is tried in (besides `phone_region`)
PHONE_REGIONS = (
    "US", "GB", "DE", "FR", "IN", "NL", "BR", "AU", "JP", "ES", "IT", "RU", "PL", "CA", "MX",
    "TR", "ID", "PH", "NG", "ZA", "PK", "KE", "AR", "CO", "EG", "SA", "KR", "CN", "UA", "SE",
)  # fmt: skip


def email_spans(text: str) -> list[tuple[int, int]]:
    found = [(m.start(), m.end()) for m in EMAIL.finditer(text)]
    if "@" in text:
        found += [(m.start(), m.end()) for m in PROVIDER_EMAIL.finditer(text)]
    found += [(m.start(), m.end()) for m in OBFUSCATED_EMAIL.finditer(text, overlapped=True)
              if _is_address(m)]  # fmt: skip
    return found


def _is_address(match: regex.Match) -> bool:
    local, at, domain = match.group("local"), match.group("at"), match.group("domain")
    labels = [label.casefold() for label in DOT_SPLIT.split(domain) if label]
    if not labels or labels[0] == "www" or DOT_WORD.match(labels[-1]) or not _real_domain(labels):
        return False
    if at.strip().casefold() != "at":
        return True  # bracketed, a spaced @ or собака: written to be read as an address
    if at.strip() == "AT" or USERNAME_LIKE.search(local):
        return True
    spelled = DOT_SPLIT.search(local) or any(not d.group().startswith(".") for d in
                                             DOT_SPLIT.finditer(domain))  # fmt: skip
    seams = (DOT_SPLIT.split(local)[-1].casefold(), labels[0])
    return bool(spelled) and not any(word in ENGLISH_STOP_WORDS for word in seams)


def _real_domain(labels: list[str]) -> bool:
    """A domain that ends in a real top-level domain, or a known mail provider's name."""
    if labels[0] in PROVIDERS:
        return True
    return len(labels) >= 2 and _suffixes().publicsuffix(".".join(labels)) is not None


@cache
def _suffixes():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_unknown=False)


def phone_spans(text: str, regions: tuple[str, ...]) -> list[tuple[int, int]]:
    found = [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(text, regions[0])]
    found = [(s, e) for s, e in found if _phone_shaped(text[s:e], text[:s], regions)]
    for match in PHONE_RUN.finditer(text):
        if _phone_shaped(match.group(), text[: match.start()], regions, run=True):
            found.append((match.start(), match.end()))
    return found


def _phone_shaped(value: str, before: str, regions: tuple[str, ...], run: bool = False) -> bool:
    """Whether a digit run is a phone number, given the text before it (see the module's doc)."""
    digits = re.sub(r"\D", "", value)
    if NOT_PHONES.match(value) or DECIMAL.search(value) or len(digits) > 15:
        return False
    if "/" in value and not AREA_SLASH.match(value):  # 951/980/1038: a list, not 030/1234567
        return False
    before = before[-40:]
    if PHONE_WORDS.search(before):
        return len(digits) >= 7
    if NUMBER_LABELS.search(before) or _other_number(value, digits):
        return False
    return not run or len(digits) >= 10 or _is_number(value, regions)


def _other_number(value: str, digits: str) -> bool:
    """A number of another kind: an ISBN-13, an epoch time, a count, a list of numbers."""
    if len(digits) == 13 and digits[:3] in ("978", "979") and isbn.is_valid(digits):
        return True
    if EPOCH.match(value):
        return True
    if THOUSANDS.match(value) or (" " in value and "." in value) or RANGE.match(value):
        return True
    if " " not in value or value.startswith("+"):
        return False
    groups = value.split()
    # a list: a group of one digit after the first, or five or more short groups not led by a 0
    return any(len(g) == 1 for g in groups[1:]) or (
        len(groups) >= 5 and all(len(g) <= 2 for g in groups) and not value.startswith("0")
    )


def _is_number(value: str, regions: tuple[str, ...]) -> bool:
    for region in dict.fromkeys(regions):
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) or (
            value.startswith("+") and phonenumbers.is_possible_number(number)
        ):
            return True
    return False
