"""A sweep's grid file: which settings vary, over which values, and how the variations are drawn.

```yaml
grid:                                   # any config key, the paths --set takes
  topics.min_cluster_size: [10, 15]
  pools.examples_per_prompt: [5, 9]
  generate.generators.0.provider.order: [1, 2]
sample: null        # null: every combination; N: N distinct combinations drawn with `seed`
seed: 0
budget_usd: null    # the whole sweep's generation budget (every variation's ledger together)
```

A value may also be a range, `{low: 0.5, high: 1.2}` (`integer: true` for whole numbers, `log:
true` for a log scale), drawn per variation: ranges need `sample`.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from mpsynth.config import settings
from mpsynth.config.base import Section
from mpsynth.core.errors import ConfigError


class Range(Section):
    """A setting drawn from an interval."""

    low: float
    high: float
    integer: bool = False
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be above low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self

    def draw(self, rng: random.Random) -> float | int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return round(value) if self.integer else round(value, 6)


class SweepGrid(Section):
    grid: dict[str, list[Any] | Range] = Field(
        description="config key (as --set takes it) -> the values it takes, or a range to draw from"
    )
    sample: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="None: every combination; N: N distinct ones drawn at random"
    )
    seed: int = 0
    budget_usd: Annotated[float, Field(gt=0.0)] | None = Field(
        default=None, description="the whole sweep's generation budget, every variation together"
    )
    together: bool = Field(
        default=True,
        description="send every variation's requests to a hosted model at once, through one "
        "governor per generator, before the variations' later stages (false: one variation's "
        "requests after another's)",
    )

    @model_validator(mode="after")
    def _usable(self) -> SweepGrid:
        if not self.grid:
            raise ValueError("grid: name at least one setting to vary")
        for key, values in self.grid.items():
            if isinstance(values, list) and len(values) < 2:
                raise ValueError(f"grid.{key}: give at least two values to compare")
            if isinstance(values, list) and len({json.dumps(v) for v in values}) < len(values):
                raise ValueError(f"grid.{key}: a value is listed twice")
        ranged = [k for k, v in self.grid.items() if isinstance(v, Range)]
        if ranged and self.sample is None:
            raise ValueError(f"grid.{ranged[0]} is a range: set `sample` to draw variations")
        return self

    def variations(self) -> list[dict[str, Any]]:
        """The settings of each variation, in a stable order: every combination of the grid, or
        `sample` distinct ones drawn with `seed`."""
        keys = list(self.grid)
        if self.sample is None:
            combos = itertools.product(*(self.grid[k] for k in keys))
            return [dict(zip(keys, combo, strict=True)) for combo in combos]
        rng = random.Random(self.seed)
        listed = all(isinstance(v, list) for v in self.grid.values())
        if listed and self.sample >= math.prod(len(v) for v in self.grid.values()):
            raise ConfigError(
                f"sample: {self.sample} is not fewer than the grid's "
                f"{math.prod(len(v) for v in self.grid.values())} combinations; leave it out to "
                "run them all"
            )
        drawn: dict[str, dict[str, Any]] = {}
        for _ in range(self.sample * 100):
            if len(drawn) == self.sample:
                break
            variation = {
                k: v.draw(rng) if isinstance(v, Range) else rng.choice(v)
                for k, v in self.grid.items()
            }
            drawn.setdefault(json.dumps(variation, sort_keys=True), variation)
        return list(drawn.values())


def overrides_of(variation: dict[str, Any]) -> list[str]:
    """A variation's settings as --set overrides (JSON is YAML, so every value reads back as is)."""
    return [f"{key}={json.dumps(value)}" for key, value in variation.items()]


def load_grid(path: str | Path) -> SweepGrid:
    path = Path(path)
    raw = settings.read_mapping(path, "grid")
    problems = []
    grid = raw.get("grid")
    for key, values in grid.items() if isinstance(grid, dict) else ():
        if isinstance(values, dict):  # a range: its own errors, named by the setting
            try:
                Range.model_validate(values)
            except ValidationError as error:
                problems.append(f"grid.{key}: {_range_problem(error)}")
        elif not isinstance(values, list):
            problems.append(
                f"grid.{key}: give a list of values ([10, 15]) or a range ({{low: 0.5, high: "
                f"1.2}}), not {json.dumps(values, default=str)}"
            )
    if problems:
        raise ConfigError(f"invalid {path}:\n  " + "\n  ".join(problems))
    try:
        return SweepGrid.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"invalid {path}:\n  {settings.describe(error, SweepGrid)}") from None


def _range_problem(error: ValidationError) -> str:
    """A range's problems in words: an unknown or missing key, or its own check's message."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        match item["type"]:
            case "extra_forbidden":
                lines.append(f"{key} is not a range setting (low, high, integer, log)")
            case "missing":
                lines.append(f"a range needs {key}")
            case _:
                lines.append(
                    f"{key + ': ' if key else ''}{item['msg'].removeprefix('Value error, ')}"
                )
    return "; ".join(lines)
