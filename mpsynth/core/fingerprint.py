"""Fingerprints: a stable hash of any JSON-able payload, what the run directory and the prompts'
request ids are keyed by."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any


def fingerprint(payload: Any) -> str:
    """A stable hash of anything JSON can express (paths and other objects via str)."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes (remembered while its size and modification time stay)."""
    stat = Path(path).stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@cache
def _file_sha256(
    path: str, size: int, mtime_ns: int
) -> str:  # size, mtime: a changed file re-hashes
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
