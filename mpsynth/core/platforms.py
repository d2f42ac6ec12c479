"""Platform names: one canonical spelling per platform, whatever the input calls it."""

from __future__ import annotations

from collections.abc import Mapping

BUILTIN_ALIASES: dict[str, str] = {
    "x": "twitter",
    "x.com": "twitter",
    "twitter.com": "twitter",
    "tweet": "twitter",
    "tweets": "twitter",
    "fb": "facebook",
    "facebook.com": "facebook",
    "meta": "facebook",
    "yt": "youtube",
    "youtube.com": "youtube",
    "youtu.be": "youtube",
    "reddit.com": "reddit",
    "ig": "instagram",
    "instagram.com": "instagram",
    "tiktok.com": "tiktok",
    "t.me": "telegram",
    "telegram.org": "telegram",
}


def normalise_platform(
    raw: str | None, extra_aliases: Mapping[str, str] | None = None
) -> str | None:
    """Case-fold and map known aliases (`X`, `x.com` -> `twitter`); None or blank -> None."""
    if raw is None:
        return None
    name = raw.strip().casefold()
    if not name:
        return None
    for prefix in ("https://", "http://", "www."):
        name = name.removeprefix(prefix)
    name = name.rstrip("/")
    aliases = {
        **BUILTIN_ALIASES,
        **{k.casefold(): v.casefold() for k, v in (extra_aliases or {}).items()},
    }
    return aliases.get(name, name)
