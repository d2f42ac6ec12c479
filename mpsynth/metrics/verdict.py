"""The verdict: every synthetic value read against the held-out real posts' value on the same
metric (the ceiling: what a second sample of real posts of the same size scores).

- A metric the real posts have a value of (a share, a mean, a count per post): a set's gap is its
  distance from the real value, and so is the ceiling's; the verdict is the set's gap minus the
  ceiling's gap (0: as close to the real posts as real posts are; above 0: further).
- A comparison metric (detectability, similarity to the real posts, divergences, privacy): the
  ceiling's value is itself the target; the verdict is the set's distance from it.

The interval of each verdict treats the two values' bootstrap intervals as normal and independent;
a verdict whose interval leaves out 0 is a gap the data supports. Where the run drew several
generations (`generate.replicates`), a set's value is its mean over them and its interval the
mean's t-interval over generations (which holds the posts' sampling noise and the generator's
own); the ceiling keeps its bootstrap interval. Pure: metric rows in, rows out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mpsynth.core import schema
from mpsynth.metrics.interactions import BY_CONSTRUCTION as DRAWN_INTERACTIONS

Z95 = 1.959964
# what the structure stage copies from the real accounts: post counts per account are drawn from
# the persona's real accounts, times are real times of the persona moved by minutes; a set matches
# these by construction, so they say nothing of the generator
BY_CONSTRUCTION = frozenset(
    {
        "accounts",
        "posts_per_account",
        "posts_per_account_gini",
        "posts_per_account_ks",
        "hour_of_day_js",
        "day_of_week_js",
    }
    # kinds (but quotes) and engagement counts are drawn from the real posts too
    | DRAWN_INTERACTIONS
)


@dataclass(frozen=True)
class Verdict:
    family: str
    metric: str
    platform: str
    dataset: str
    real: float | None  # the real value (None for a comparison metric)
    ceiling: float  # the held-out posts' value
    value: float
    gap: float  # the set's gap beyond the ceiling's (see the module's doc)
    low: float | None  # its 95% interval; None when neither value has one
    high: float | None
    replicates: int = 1  # generations the value is the mean of
    sd: float | None = None  # the value's standard deviation over them

    @property
    def by_construction(self) -> bool:
        """Whether the set matches the real posts here by construction (no evidence either way)."""
        return self.metric in BY_CONSTRUCTION

    @property
    def supported(self) -> bool:
        """Whether the interval leaves out zero (a gap, or a better score, the data supports)."""
        return self.low is not None and (self.low > 0 or self.high < 0)


def _half_width(row: dict) -> float | None:
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return (high - low) / 2


Spread = dict[tuple[str, str, str, str], dict]
"""(family, metric, dataset, platform) -> the metric's spread over generations (replicates stage)."""


def _over_generations(row: dict, spread: Spread | None) -> dict:
    """The row with its value and interval over generations, where the run drew several: the
    mean, and the wider of its t-interval and the first generation's own interval (a metric that
    came out the same in a few generations is not thereby certain)."""
    found = (spread or {}).get((row["family"], row["metric"], row["dataset"], row["platform"]))
    if found is None or found["replicates"] < 2 or found["sd"] is None:
        return row
    mean = found["mean"]
    halves = [h for h in (found["mean_high"] - mean, _half_width(row)) if h is not None]
    half = max(halves) if halves else None  # zero: alike in every resample and generation
    return {
        **row,
        "value": mean,
        "ci_low": None if half is None else mean - half,
        "ci_high": None if half is None else mean + half,
        "replicates": found["replicates"],
        "sd": found["sd"],
    }


def verdicts(rows: list[dict], spread: Spread | None = None) -> list[Verdict]:
    """A verdict for every (metric, platform, synthetic set) the holdout was measured on, the
    largest supported gaps first (gaps without an interval after those with one, and what a set
    matches by construction last); `spread` reads each synthetic value over generations."""
    rows = [r for r in rows if r["topic"] is None and r["value"] is not None]
    rows = [
        r if r["dataset"] in (schema.REAL, schema.REAL_HOLDOUT) else _over_generations(r, spread)
        for r in rows
    ]
    by_key = {(r["dataset"], r["metric"], r["platform"]): r for r in rows}
    found = []
    for r in rows:
        dataset = r["dataset"]
        if dataset in (schema.REAL, schema.REAL_HOLDOUT, schema.REAL_SUBSAMPLE):
            continue
        ceiling = by_key.get((schema.REAL_HOLDOUT, r["metric"], r["platform"]))
        if ceiling is None:
            continue
        real = by_key.get((schema.REAL, r["metric"], r["platform"]))
        real_value = None if real is None else real["value"]
        if real_value is not None:  # a difference of distances from the real value
            gap = abs(r["value"] - real_value) - abs(ceiling["value"] - real_value)
        else:
            gap = r["value"] - ceiling["value"]
        widths = [w for w in (_half_width(r), _half_width(ceiling)) if w is not None]
        low = high = None
        half = math.sqrt(sum(w * w for w in widths))
        if half > 1e-12:  # intervals of zero width (every resample alike) say nothing either way
            low, high = gap - half, gap + half
        found.append(
            Verdict(
                r["family"],
                r["metric"],
                r["platform"],
                dataset,
                real_value,
                ceiling["value"],
                r["value"],
                gap,
                low,
                high,
                r.get("replicates", 1),
                r.get("sd"),
            )
        )

    def order(v: Verdict) -> tuple:
        if v.by_construction:
            return (2, v.metric)
        if v.low is None:
            return (1, -abs(v.gap))
        half = (v.high - v.low) / 2
        return (0, -abs(v.gap) / half if half > 0 else -math.inf)

    return sorted(found, key=order)


def interconnection(
    rows: list[dict], spread: Spread | None = None, metric: str = "cross_platform_edge_share"
) -> list[str]:
    """Per generator with both an MPTM and a per-platform set: one sentence comparing the share of
    cross-platform edges (all platforms), worded as the intervals allow (over generations where
    the run drew several)."""
    overall = {
        r["dataset"]: _over_generations(r, spread)
        for r in rows
        if r["topic"] is None
        and r["platform"] == schema.ALL_PLATFORMS
        and r["metric"].endswith(metric)
        and r["metric"].startswith("cross_platform")
        and r["value"] is not None
    }
    lines = []
    for name, mptm in sorted(overall.items()):
        if not name.endswith("-mptm"):
            continue
        base = overall.get(name.removesuffix("-mptm") + "-per_platform")
        if base is None:
            continue
        shown = f"{name} {mptm['value']:.3f} against {base['dataset']} {base['value']:.3f}"
        if mptm.get("replicates", 1) > 1:
            shown += f" (means over {mptm['replicates']} generations)"
        widths = [_half_width(mptm), _half_width(base)]
        if None in widths:
            lines.append(
                f"Cross-platform interconnection: {shown}; these values carry no interval "
                "(evaluate.networks.bootstrap_samples is 0, or too few posts share anything), so "
                "whether MPTM interconnects more cannot be judged."
            )
            continue
        difference = mptm["value"] - base["value"]
        half = math.sqrt(sum(w * w for w in widths))
        if difference - half > 0:
            verdict = "MPTM gives more cross-platform interconnection than per-platform prompting"
        elif difference + half < 0:
            verdict = "MPTM gives less cross-platform interconnection than per-platform prompting"
        else:
            verdict = "no difference in cross-platform interconnection is detectable at this size"
        lines.append(
            f"{verdict}: {shown} (difference {difference:+.3f}, 95% interval "
            f"{difference - half:+.3f} to {difference + half:+.3f})."
        )
    return lines
