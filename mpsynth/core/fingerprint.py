"""Fingerprints: a stable hash of any JSON-able payload, what the run directory and the prompts'
request ids are keyed by."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(payload: Any) -> str:
    """A stable hash of anything JSON can express (paths and other objects via str)."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
