"""mpsynth: synthetic multi-platform social-media datasets from real corpora, with fidelity metrics."""

from __future__ import annotations

__version__ = "0.3.0"
