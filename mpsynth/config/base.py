"""What every config section shares: frozen, unknown keys rejected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


def listed_once(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("each strategy may be listed once")
    return value


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
