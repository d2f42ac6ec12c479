"""A sweep's sensitivity analysis: every metric of every variation read as a distance from fidelity,
each setting's effect on it (mpsynth.metrics.sensitivity), per metric and per family, and the page
that shows them ranked.

A metric's fidelity gap is its distance from the real set's value in the same variation (the real
posts measured the same way; for graphs, the real posts drawn to the synthetic set's size), or
from its ideal where it is a comparison (a divergence, a share of real posts matched); a metric
with neither is read as it is. Lower is closer to the real data for gaps; the page says which is
which.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa

from mpsynth.core.schema import ALL_PLATFORMS, REAL, REAL_HOLDOUT, REAL_SUBSAMPLE
from mpsynth.metrics.sensitivity import (
    Effect,
    chance_effect,
    family_effect,
    level_codes,
    main_effect,
    noise_of,
)
from mpsynth.report.html import STYLE, ideal_of, png

SEED = 0


def observation(row: dict) -> str:
    """What one value of a sweep belongs to: its variation, and its generation where the variations
    were generated several times (`v03/2`)."""
    replicate = row.get("replicate")
    return row["variation"] if replicate is None else f"{row['variation']}/{replicate}"


def fidelity_values(metrics: pa.Table) -> dict[tuple[str, str, str], dict[str, tuple]]:
    """(family, metric, dataset) -> {observation: (gap or value, noise, kind)}, over all topics;
    `platform: all` where the metric has it, else the mean over platforms. An observation is a
    variation, or one generation of it (`observation`)."""
    rows = [{**r, "variation": observation(r)} for r in metrics.to_pylist() if r["topic"] is None]
    real: dict[tuple, float] = {}
    # the real posts drawn to the synthetic size where there is such a baseline (graphs grow with
    # their posts), else all of them
    for baseline in (REAL, REAL_SUBSAMPLE):
        for r in rows:
            if r["dataset"] == baseline and r["value"] is not None:
                real[(r["variation"], r["family"], r["metric"], r["platform"])] = r["value"]
    cells: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    kinds: dict[tuple, str] = {}
    for r in rows:
        # the held-out real posts are no set a setting writes
        if r["dataset"] in (REAL, REAL_SUBSAMPLE, REAL_HOLDOUT) or r["value"] is None:
            continue
        reference = real.get((r["variation"], r["family"], r["metric"], r["platform"]))
        kind = "gap to real"
        if reference is None:
            reference = ideal_of(r["metric"])
            kind = "gap to ideal" if reference is not None else "value"
        value = r["value"] if reference is None else abs(r["value"] - reference)
        noise = noise_of(np.array([r["ci_low"]]), np.array([r["ci_high"]]))[0]
        key = (r["family"], r["metric"], r["dataset"])
        kinds[key] = kind
        cells[key][r["variation"]].append((r["platform"], value, noise))
    values: dict[tuple, dict[str, tuple]] = {}
    for key, by_variation in cells.items():
        values[key] = {}
        for variation, found in by_variation.items():
            overall = [f for f in found if f[0] == ALL_PLATFORMS]
            picked = overall or found
            noise = float(np.sqrt(np.mean([f[2] ** 2 for f in picked]) / len(picked)))
            values[key][variation] = (float(np.mean([f[1] for f in picked])), noise, kinds[key])
    return values


def sensitivity_tables(
    metrics: pa.Table,
    settings: dict[str, dict[str, Any]],
    levels: dict[str, list | None],
    resamples: int = 1000,
) -> tuple[pa.Table, pa.Table]:
    """Every setting's effect on every metric, and on every family: (per metric, per family).
    `settings`: variation -> its settings; `levels`: setting -> the grid's values (None: a range)."""
    rng = np.random.default_rng(SEED)
    values = fidelity_values(metrics)
    # every observation (a variation, or one of its generations) with its variation's settings
    seen = sorted({o for found in values.values() for o in found}) or sorted(settings)
    parent = [o.split("/", 1)[0] for o in seen]
    clusters = np.array([sorted(settings).index(p) for p in parent])
    settings = {o: settings[p] for o, p in zip(seen, parent, strict=True)}
    variations = seen
    by_metric: list[dict] = []
    family_members: dict[tuple, list[Effect]] = defaultdict(list)
    family_values: dict[tuple, list[np.ndarray]] = defaultdict(list)
    family_codes: dict[str, tuple[np.ndarray, int]] = {}
    for setting, listed in levels.items():
        codes, names = level_codes([settings[v][setting] for v in variations], listed)
        family_codes[setting] = (codes, len(names))
        for (family, metric, dataset), found in sorted(values.items()):
            column = np.array([found.get(v, (np.nan, 0.0, ""))[0] for v in variations])
            noise = np.array([found.get(v, (np.nan, 0.0, ""))[1] for v in variations])
            effect = main_effect(column, noise, codes, len(names), rng, resamples, clusters)
            if effect is None:
                continue
            kind = next(iter(found.values()))[2]
            family_members[(setting, family, dataset)].append(effect)
            family_values[(setting, family, dataset)].append(column)
            by_metric.append(
                {
                    "setting": setting,
                    "family": family,
                    "metric": metric,
                    "dataset": dataset,
                    "reading": kind,
                    "levels": json.dumps(names),
                    "level_means": json.dumps([round(m, 6) for m in effect.level_means]),
                    "effect": effect.effect,
                    "effect_low": effect.low,
                    "effect_high": effect.high,
                    "standardised": effect.standardised,
                    "standardised_low": effect.standardised_low,
                    "standardised_high": effect.standardised_high,
                    "moved": effect.moved,
                }
            )
    by_family = []
    for (setting, family, dataset), effects in sorted(family_members.items()):
        size, low, high = family_effect(effects, rng, resamples)
        codes, n_levels = family_codes[setting]
        chance = chance_effect(
            np.vstack(family_values[(setting, family, dataset)]),
            codes,
            n_levels,
            rng,
            clusters=clusters,
        )
        by_family.append(
            {
                "setting": setting,
                "family": family,
                "dataset": dataset,
                "effect": size,
                "effect_low": low,
                "effect_high": high,
                "by_chance": chance,
                "metrics": len(effects),
                "metrics_moved": sum(e.moved for e in effects),
            }
        )
    by_family.sort(key=lambda r: -r["effect"])
    by_metric.sort(key=lambda r: -abs(r["standardised"]))
    return pa.Table.from_pylist(by_metric), pa.Table.from_pylist(by_family)


def _heatmap(by_family: list[dict], dataset: str) -> str:
    rows = [r for r in by_family if r["dataset"] == dataset]
    settings = sorted({r["setting"] for r in rows})
    families = sorted({r["family"] for r in rows})
    grid = np.full((len(settings), len(families)), np.nan)
    moved = {}
    for r in rows:
        i, j = settings.index(r["setting"]), families.index(r["family"])
        grid[i, j] = r["effect"]
        moved[(i, j)] = f"{r['metrics_moved']}/{r['metrics']}"
    figure, axis = plt.subplots(figsize=(1.1 * len(families) + 3, 0.6 * len(settings) + 1.6))
    image = axis.imshow(grid, cmap="Reds", vmin=0, aspect="auto")
    axis.set_xticks(range(len(families)), families, rotation=35, ha="right")
    axis.set_yticks(range(len(settings)), settings)
    for (i, j), text in moved.items():
        dark = grid[i, j] > 0.6 * np.nanmax(grid)  # white on the darkest cells
        axis.text(
            j,
            i,
            f"{grid[i, j]:.2f}\n{text}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    axis.set_title(f"{dataset}: mean |standardised effect| (metrics moved / metrics)", fontsize=9)
    figure.colorbar(image, ax=axis, shrink=0.8)
    return png(figure)


def _forest(by_metric: list[dict], setting: str, dataset: str, top: int = 12) -> str:
    rows = [r for r in by_metric if r["setting"] == setting and r["dataset"] == dataset][:top]
    if not rows:
        return ""
    figure, axis = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    points = np.array([r["standardised"] for r in rows])
    errors = np.array(
        [
            [r["standardised"] - r["standardised_low"], r["standardised_high"] - r["standardised"]]
            for r in rows
        ]
    ).T
    colours = ["#c5221f" if r["moved"] else "#888" for r in rows]
    axis.errorbar(points, y, xerr=np.clip(errors, 0, None), fmt="none", ecolor=colours)
    axis.scatter(points, y, c=colours, zorder=3)
    axis.axvline(0, color="#444", linewidth=0.8)
    axis.set_yticks(y, [f"{r['family']}: {r['metric']}" for r in rows], fontsize=7)
    levels = json.loads(rows[0]["levels"])
    axis.set_xlabel(f"standardised effect ({levels[-1]} minus {levels[0]})", fontsize=8)
    axis.set_title(
        f"{setting} on {dataset}: largest effects (red: interval leaves out 0)", fontsize=9
    )
    return png(figure)


def render_sensitivity(
    summary: dict[str, Any], variations: list[dict], by_metric: pa.Table, by_family: pa.Table
) -> str:
    """The sweep's page: what varied, what it cost, and which settings moved which metrics."""
    metric_rows, family_rows = by_metric.to_pylist(), by_family.to_pylist()
    settings = list(summary["grid"])
    datasets = sorted({r["dataset"] for r in family_rows})
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>mpsynth sweep</title><style>{STYLE}</style>",
        "<h1>Sweep: which settings matter</h1>",
        f"<p>{len(variations)} variations of <code>{html.escape(summary['config'])}</code> over "
        f"{', '.join(f'<code>{html.escape(s)}</code>' for s in settings)}. "
        f"{summary['finished']} finished, {summary['failed']} failed.</p>",
        "<h2>Work done once</h2><table><tr><th class=l>stage</th><th>ran</th><th>reused</th></tr>",
        *(
            f"<tr><td class=l>{stage}</td><td>{n['ran']}</td><td>{n['reused']}</td></tr>"
            for stage, n in summary["stages"].items()
        ),
        "</table>",
        f"<p>Sweep wall time {summary['wall_s']:.0f} s ({len(summary['invocations'])} "
        "invocation(s)); the same variations run one by one "
        f"(every stage at its own cost, once per variation) {summary['one_by_one_s']:.0f} s.</p>",
        "<h2>Variations</h2><table><tr><th class=l>variation</th>",
        *(f"<th class=l>{html.escape(s)}</th>" for s in settings),
        "<th class=l>status</th><th>seconds computed</th></tr>",
    ]
    for v in variations:
        cells = "".join(
            f"<td class=l>{html.escape(json.dumps(v['settings'][s]))}</td>" for s in settings
        )
        parts.append(
            f"<tr><td class=l>{v['variation']}</td>{cells}"
            f"<td class=l>{html.escape(v['status'])}</td>"
            f"<td>{v['seconds']:.0f}</td></tr>"
        )
    parts += [
        "</table><h2>Effects by metric family</h2>",
        "<p class=muted>A setting's effect on a metric: its mean over the variations at the "
        "setting's last value minus the mean at its first, divided by the metric's spread over "
        "all variations; a family's effect is the mean size over its metrics. Gaps are distances "
        "from the real posts' value (or the ideal), so a negative effect on a gap brings the "
        "synthetic set closer. Intervals: 95% bootstrap over variations and each value's own "
        "noise. <i>By chance</i>: the family's effect with the setting's values shuffled over the "
        "variations; with few variations it is well above zero, so read an effect against it, "
        "and the metrics moved (intervals leaving out zero) beside it.</p>",
        *(_heatmap(family_rows, d) for d in datasets),
        "<table><tr><th class=l>setting</th><th class=l>family</th><th class=l>set</th>"
        "<th>effect</th><th>interval</th><th>by chance</th><th>moved</th></tr>",
        *(
            f"<tr><td class=l>{html.escape(r['setting'])}</td><td class=l>{r['family']}</td>"
            f"<td class=l>{r['dataset']}</td><td>{r['effect']:.2f}</td>"
            f"<td>[{r['effect_low']:.2f}, {r['effect_high']:.2f}]</td>"
            f"<td>{r['by_chance']:.2f}</td>"
            f"<td>{r['metrics_moved']}/{r['metrics']}</td></tr>"
            for r in family_rows[:40]
        ),
        "</table><h2>Largest effects by setting</h2>",
    ]
    for setting in settings:
        for dataset in datasets:
            parts.append(_forest(metric_rows, setting, dataset))
    parts.append(
        "<p class=muted>Every metric's effect is in <code>sensitivity.parquet</code>, every "
        "family's in <code>sensitivity_families.parquet</code>, every metric of every variation "
        "in <code>metrics.parquet</code>.</p>"
    )
    return "\n".join(parts)
