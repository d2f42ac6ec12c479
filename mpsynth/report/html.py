"""Report: one self-contained HTML page (plots inlined as PNG data URIs, no external resources)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa

from mpsynth.core import schema
from mpsynth.metrics.lexical import COUNTED
from mpsynth.report.structure import FAMILIES as STRUCTURE_FAMILIES
from mpsynth.report.verdict import verdict_section

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.good{background:#e6f4ea}.warn{background:#fef7e0}.bad{background:#fce8e6}
img{max-width:100%}.post{font-size:.85rem;white-space:pre-wrap;border-left:3px solid #ccc;
padding:.2rem .6rem;margin:.3rem 0}.muted{color:#777;font-size:.85rem}
"""


def png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _lexical_plot(metrics: list[dict], datasets: list[str], platforms: list[str]) -> str:
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharey=True)
    width = 0.8 / max(1, len(datasets))
    for axis, feature in zip(axes.flat, COUNTED, strict=True):
        for offset, dataset in enumerate(datasets):
            found = {
                m["platform"]: m
                for m in metrics
                if m["metric"] == f"share_with_{feature}" and m["dataset"] == dataset
            }
            x = np.arange(len(platforms)) + offset * width
            values = [found[p]["value"] if p in found else np.nan for p in platforms]
            errors = np.array(
                [
                    [
                        found[p]["value"] - found[p]["ci_low"],
                        found[p]["ci_high"] - found[p]["value"],
                    ]
                    if p in found and found[p]["ci_low"] is not None
                    else [0.0, 0.0]
                    for p in platforms
                ]
            ).T
            # a percentile interval may sit just off its estimate on small samples: no bar below 0
            errors = np.clip(np.nan_to_num(errors), 0.0, None)
            axis.bar(x, values, width, yerr=errors, capsize=2, label=dataset)
        axis.set_title(f"share of posts with {feature}")
        axis.set_xticks(np.arange(len(platforms)) + width * (len(datasets) - 1) / 2, platforms)
        axis.set_ylim(0, 1)
    axes.flat[0].legend(fontsize=8)
    figure.tight_layout()
    return png(figure)


def _length_plot(features: pa.Table, datasets: list[str], platforms: list[str]) -> str:
    figure, axes = plt.subplots(
        1, len(platforms), figsize=(3.2 * len(platforms), 3.4), squeeze=False
    )
    dataset_col = np.asarray(features.column("dataset").to_pylist(), dtype=object)
    platform_col = np.asarray(features.column("platform").to_pylist(), dtype=object)
    chars = features.column("chars").to_numpy()
    for axis, platform in zip(axes[0], platforms, strict=True):
        data = [chars[(dataset_col == d) & (platform_col == platform)] for d in datasets]
        axis.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        axis.set_xticks(range(1, len(datasets) + 1), datasets, rotation=30, ha="right", fontsize=7)
        axis.set_title(f"{platform}: length (chars)", fontsize=9)
    figure.tight_layout()
    return png(figure)


# What a comparison metric is when the synthetic set is indistinguishable from the real one.
IDEAL = {
    "sentiment_js_divergence": 0.0,
    "topic_js_divergence": 0.0,
    "real_topics_covered": 1.0,
    "outlier_share": None,
    "distinct_topics": None,
    "detectability_auc": 0.5,
    "hashtag_set_overlap": 1.0,
    "length_ks_distance": 0.0,
}
PRIVACY_IDEAL = 0.0  # no copies, no replayed identifiers


def ideal_of(metric: str) -> float | None:
    """What a metric is when the synthetic set is indistinguishable from the real one (None: no
    fixed ideal; compare with the real set's value)."""
    if "counterpart@" in metric:
        return 1.0
    if metric.startswith(("exact_copy", "near_copy", "replayed_", "account_linkage")):
        return PRIVACY_IDEAL
    if metric.endswith(("_found", "_rank_correlation")):
        return 1.0
    return IDEAL.get(metric)


def _scorecard(metrics: list[dict], datasets: list[str], platform: str) -> str:
    """Every metric on one platform: the real value (or the ideal for comparison metrics) and each
    synthetic set's value and gap, coloured by how far the gap is."""
    synthetic = [d for d in datasets if d != schema.REAL]
    overall = [m for m in metrics if m["platform"] == platform and m["topic"] is None]
    by_key = {(m["dataset"], m["metric"]): m for m in overall}
    keys = list(dict.fromkeys((m["family"], m["metric"]) for m in overall))
    head = "".join(f"<th>{html.escape(d)}</th><th>gap</th>" for d in synthetic)
    lines = [
        f'<table><tr><th class="l">family</th><th class="l">metric</th><th>real</th>{head}</tr>'
    ]
    for family, metric in keys:
        real = by_key.get((schema.REAL, metric))
        reference = real["value"] if real else ideal_of(metric)
        shown = (
            f"{reference:.3f}"
            if real
            else (f"ideal {reference:g}" if reference is not None else "–")
        )
        cells = []
        for dataset in synthetic:
            other = by_key.get((dataset, metric))
            if other is None or other["value"] != other["value"]:  # missing or NaN
                cells.append("<td>–</td><td>–</td>")
                continue
            if reference is None:
                cells.append(f"<td>{other['value']:.3f}</td><td>–</td>")
                continue
            gap = other["value"] - reference
            scale = max(abs(reference), 0.1)
            css = (
                "good" if abs(gap) <= 0.1 * scale else "warn" if abs(gap) <= 0.5 * scale else "bad"
            )
            cells.append(f'<td>{other["value"]:.3f}</td><td class="{css}">{gap:+.3f}</td>')
        lines.append(
            f'<tr><td class="l">{family}</td><td class="l">{html.escape(metric)}</td>'
            f"<td>{shown}</td>{''.join(cells)}</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _grouped_bars(
    metrics: list[dict], names: list[str], datasets: list[str], platforms: list[str], title: str
) -> str:
    figure, axes = plt.subplots(
        1, len(names), figsize=(4 * len(names), 3.4), sharey=True, squeeze=False
    )
    width = 0.8 / max(1, len(datasets))
    for axis, name in zip(axes[0], names, strict=True):
        for offset, dataset in enumerate(datasets):
            found = {
                m["platform"]: m["value"]
                for m in metrics
                if m["metric"] == name and m["dataset"] == dataset
            }
            axis.bar(
                np.arange(len(platforms)) + offset * width,
                [found.get(p, np.nan) for p in platforms],
                width,
                label=dataset,
            )
        axis.set_title(f"{title}: {name.removeprefix('share_')}", fontsize=9)
        axis.set_xticks(
            np.arange(len(platforms)) + width * (len(datasets) - 1) / 2, platforms, fontsize=8
        )
        axis.set_ylim(0, 1)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def _coverage_plot(metrics: list[dict], datasets: list[str]) -> str:
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for axis, direction in zip(
        axes, ("synthetic_with_real_counterpart", "real_with_synthetic_counterpart"), strict=True
    ):
        for dataset in datasets:
            points = sorted(
                (float(m["metric"].split("@")[1]), m["value"])
                for m in metrics
                if m["dataset"] == dataset
                and m["platform"] == schema.ALL_PLATFORMS
                and m["metric"].startswith(direction + "@")
            )
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=dataset)
        axis.set_title(direction.replace("_", " "), fontsize=9)
        axis.set_xlabel("cosine threshold")
        axis.set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def _map_plot(embedding_map: pa.Table) -> str:
    figure, axis = plt.subplots(figsize=(7, 5.5))
    datasets = embedding_map.column("dataset").to_numpy(zero_copy_only=False)
    x, y = embedding_map.column("x").to_numpy(), embedding_map.column("y").to_numpy()
    order = [schema.REAL, *sorted(set(datasets.tolist()) - {schema.REAL})]
    for index, dataset in enumerate(order):  # C<index>: the same colour as in the other plots
        mask = datasets == dataset
        real = {"color": "0.6", "s": 4, "alpha": 0.4}
        style = real if index == 0 else {"color": f"C{index}", "s": 5, "alpha": 0.6}
        axis.scatter(x[mask], y[mask], label=dataset, **style)
    axis.set_title(
        "real and synthetic posts in one embedding space (PCA of the real set)", fontsize=9
    )
    axis.legend(fontsize=7, markerscale=3)
    figure.tight_layout()
    return png(figure)


TOPIC_METRICS = ("share_with_hashtags", "share_with_urls", "share_with_mentions", "share_negative")


def _topic_table(by_topic: list[dict], datasets: list[str]) -> str:
    """The largest real topics by name, as a heatmap: a row per topic, a column per metric and
    dataset (the real posts first), each cell shaded by its value against its metric's largest."""
    value = {(r["topic"], r["metric"], r["dataset"]): r["value"] for r in by_topic}
    real = {r["topic"]: r for r in by_topic if r["dataset"] == schema.REAL}
    topics = sorted(real, key=lambda t: -real[t]["n"])
    name = {r["topic"]: r.get("topic_name") or str(r["topic"]) for r in by_topic}
    shown = [d for d in datasets if any((t, m, d) in value for t in topics for m in TOPIC_METRICS)]
    group = len(shown)
    head = "".join(
        f'<th colspan="{group}">{html.escape(m.replace("share_with_", "").replace("_", " "))}</th>'
        for m in TOPIC_METRICS
    )
    sets = "".join(f"<th>{html.escape(d)}</th>" for _ in TOPIC_METRICS for d in shown)
    lines = [
        f'<table class="heat"><tr><th class="l" rowspan="2">topic (real posts)</th>{head}</tr>',
        f"<tr>{sets}</tr>",
    ]
    largest = {
        m: max((value.get((t, m, d)) or 0.0 for t in topics for d in shown), default=0.0)
        for m in TOPIC_METRICS
    }
    for topic in topics:
        cells = []
        for metric in TOPIC_METRICS:
            top = largest[metric]
            for d in shown:
                found = value.get((topic, metric, d))
                if found is None:
                    cells.append("<td>–</td>")
                    continue
                shade = 0.75 * found / top if top > 0 else 0.0
                cells.append(f'<td style="background:rgba(197,34,31,{shade:.2f})">{found:.2f}</td>')
        label = f"{name[topic]} ({real[topic]['n']:,})"
        lines.append(f'<tr><td class="l">{html.escape(label)}</td>{"".join(cells)}</tr>')
    return "\n".join([*lines, "</table>"])


ENTITY_BANDS = ("top", "middle", "bottom")


def _entities_section(rows: list[dict], datasets: list[str]) -> str:
    """The real set's 20 most, 20 middle and 20 least frequent named entities: the share each
    synthetic set mentions and how their frequencies rank alike; then per entity label."""
    mine = [r for r in rows if r["family"] == "entities" and r["platform"] == schema.ALL_PLATFORMS]
    if not mine:
        return ""
    synthetic = [d for d in datasets if d != schema.REAL]
    by_key = {(r["dataset"], r["metric"]): r["value"] for r in mine}
    metrics = list(dict.fromkeys(r["metric"] for r in mine))
    banded = [
        m
        for band in ENTITY_BANDS
        for m in metrics
        if m.startswith(band)
        and m.endswith(("_real_entities_found", "_frequency_rank_correlation"))
    ]
    labels = [m for m in metrics if m not in banded]
    head = "".join(f"<th>{html.escape(d)}</th>" for d in synthetic)
    lines = [
        "<h2>Named entities</h2>",
        "<p>The real posts' named entities ranked by how many posts mention them: the share of "
        "the 20 most frequent, the 20 in the middle and the 20 least frequent that each synthetic "
        "set mentions, and the rank correlation of their frequencies (all platforms).</p>",
        f'<table><tr><th class="l">metric</th>{head}</tr>',
    ]
    for metric in [*banded, *labels]:
        values = [by_key.get((d, metric)) for d in synthetic]
        cells = "".join(
            "<td>–</td>" if v is None or v != v else f"<td>{v:.3f}</td>" for v in values
        )
        lines.append(f'<tr><td class="l">{html.escape(metric)}</td>{cells}</tr>')
    return "\n".join([*lines, "</table>"])


def counts_table(summary: dict[str, dict[str, int]], columns: list[str]) -> str:
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join(
        f'<tr><td class="l">{html.escape(key)}</td>'
        + "".join(f"<td>{values.get(c, 0):,}</td>" for c in columns)
        + "</tr>"
        for key, values in summary.items()
    )
    return f'<table><tr><th class="l"></th>{head}</tr>{body}</table>'


COVERAGE_MARK = 0.5  # below this share of posts in its languages, a sentiment figure is marked


def _coverage_warning(rows: list[dict]) -> str:
    """A marked note naming every set and platform whose sentiment was measured mostly on posts in
    languages its backend does not cover ('' when none was)."""
    low = [
        r
        for r in rows
        if r["family"] == "sentiment"
        and r["metric"] == "language_coverage"
        and r["platform"] != schema.ALL_PLATFORMS
        and r["value"] < COVERAGE_MARK
    ]
    if not low:
        return ""
    named = "; ".join(
        f"{html.escape(r['dataset'])} on {html.escape(r['platform'])} ({r['value']:.0%} covered)"
        for r in sorted(low, key=lambda r: (r["platform"], r["dataset"]))
    )
    return (
        '<p class="warn">&#9888; Not trustworthy: most of these posts are in languages the '
        f"sentiment backend does not cover: {named}. Give their language a model of its own "
        "(evaluate.sentiment_by_language).</p>"
    )


def render_report(
    title: str,
    metrics: pa.Table,
    features: pa.Table,
    embedding_map: pa.Table,
    ingest_summary: dict[str, dict[str, int]],
    synthetic_examples: dict[str, list[dict[str, Any]]],
    manifest: dict[str, Any],
    sections: str = "",
    steps: str = "",
    structure: str = "",
    sentiment_backend: str = "VADER",
    measure_space: str = "",
    spread: dict | None = None,
) -> str:
    """The page; `sections` is HTML the run's pipeline adds after the counts (a labelled run's
    utility results), `steps` what postprocessing and the privacy guard did (after the topics),
    `structure` the accounts, times and networks (their metrics stay out of the scorecards),
    `sentiment_backend` what measured sentiment, in words; `measure_space` the embedding the
    similarity was measured in; `spread` each metric over the generations the run drew."""
    every_row = metrics.to_pylist()
    rows = [r for r in every_row if r["topic"] is None]
    # structure and entities have sections of their own, too long for the scorecards
    scored = [r for r in rows if r["family"] not in (*STRUCTURE_FAMILIES, "entities")]
    by_topic = [r for r in every_row if r["topic"] is not None]
    # a fixed order (and so fixed colours): real first, then the synthetic sets by name
    present = {r["dataset"] for r in rows}
    held = [schema.REAL_HOLDOUT] if schema.REAL_HOLDOUT in present else []
    datasets = [
        schema.REAL,
        *held,  # the ceiling, beside the real posts
        *sorted(present - {schema.REAL, schema.REAL_SUBSAMPLE, schema.REAL_HOLDOUT}),
    ]
    platforms = sorted({r["platform"] for r in rows if r["platform"] != schema.ALL_PLATFORMS})
    posts = {
        d: {
            p: next((r["n"] for r in rows if r["dataset"] == d and r["platform"] == p), 0)
            for p in platforms
        }
        for d in datasets
    }
    example_html = []
    for dataset, examples in synthetic_examples.items():
        example_html.append(f"<h3>{html.escape(dataset)}</h3>")
        example_html.extend(
            f'<div class="post"><b>{html.escape(e["platform"])}</b> · {html.escape(e["text"])}</div>'
            for e in examples
        )
    stage_rows = {
        name: {"seconds": entry.get("seconds", 0)}
        for name, entry in manifest.get("stages", {}).items()
    }
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="muted">config hash {html.escape(str(manifest.get("config_hash", ""))[:12])} ·
mpsynth {html.escape(str(manifest.get("versions", {}).get("mpsynth", "")))}</p>
{verdict_section(every_row, spread)}
<h2>Posts per platform</h2>
{counts_table(posts, platforms)}
{sections}
<h2>Real input</h2>
{counts_table(ingest_summary, ["read", "kept", "quarantined"])}
<h2>Lexical features</h2>
<p>Share of posts with at least one of each feature, per platform, with
bootstrap confidence intervals.</p>
{_lexical_plot(rows, datasets, platforms)}
{_length_plot(features, datasets, platforms)}
<h2>Sentiment ({html.escape(sentiment_backend)})</h2>
{_coverage_warning(rows)}
{_grouped_bars(rows, ["share_negative", "share_neutral", "share_positive"], datasets, platforms, "share")}
<h2>Embedding similarity</h2>
<p>Share of posts whose nearest post in the other set is at least as similar as each threshold
(all platforms){html.escape(measure_space and f"; measured in {measure_space}")}.</p>
{_coverage_plot(rows, datasets)}
{_map_plot(embedding_map)}
<h2>Scorecard: gap from real, all platforms</h2>
<p class="muted">Gap: synthetic minus real (or minus the ideal for comparison metrics). Green: within
10% of the reference; amber: within 50%; red: further.</p>
{_scorecard(scored, datasets, schema.ALL_PLATFORMS)}
{"".join(f"<details><summary>{html.escape(p)}</summary>{_scorecard(scored, datasets, p)}</details>" for p in platforms)}
<h2>By topic</h2>
<p class="muted">The largest real topics; every set's posts placed in the real topic model.</p>
{_topic_table(by_topic, datasets)}
{_entities_section(rows, datasets)}
{structure}
{steps}
<h2>Synthetic examples</h2>
{"".join(example_html)}
<h2>Stages</h2>
{counts_table(stage_rows, ["seconds"])}
</body></html>
"""
