"""The report's "Structure and networks" section: what structure each set carries, posts-per-account
and hour-of-day curves, the network metrics side by side, the top of each set's cross-platform
graph, and one synthetic account beside its persona's real posts."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pyarrow as pa

from mpsynth.core import schema

FAMILIES = ("structure", "interaction", "network")
COUNTS = ("accounts", "_nodes", "_edges", "_pairs")  # metrics that count, shown without decimals
PLATFORM_COLOURS = ("#1d9bf0", "#ff4500", "#c4302b", "#1877f2", "#6a1b9a", "#2e7d32", "#f9a825")
GRAPHS = {
    "co_url": "accounts posting the same URL within the window",
    "co_domain": "accounts posting the same domain within the window",
    "co_hashtag": "accounts posting the same hashtag within the window",
    "co_reply": "accounts answering the same post within the window",
    "co_retweet": "accounts resharing the same post within the window",
    "co_tweet": "accounts posting the same text (not a repost) within the window",
    "co_similar_tweet": "accounts posting near-identical texts (token Jaccard >= the setting) "
    "within the window",
    "hashtags": "hashtags used together in a post",
    "cross_platform": "hashtags, domains and mentions; the same item on two platforms joined",
}


def render_structure(
    metrics: list[dict],
    curves: pa.Table | None,
    drawings: pa.Table | None,
    carried: dict[str, dict[str, dict[str, int]]],
    account: dict[str, Any] | None,
    png: Callable[[plt.Figure], str],
) -> str:
    """The section's HTML ('' when the evaluation measured no structure)."""
    rows = [m for m in metrics if m["family"] in FAMILIES and m["topic"] is None]
    if not rows:
        return ""
    present = {r["dataset"] for r in rows}
    baseline = [schema.REAL_SUBSAMPLE] if schema.REAL_SUBSAMPLE in present else []
    datasets = [schema.REAL, *baseline, *sorted(present - {schema.REAL, *baseline})]
    parts = [
        "<h2>Structure and networks</h2>",
        "<p>Accounts, times and the graphs coordination studies build from them. Synthetic "
        "accounts follow personas (clusters of at least k real accounts); times are drawn from "
        "the persona's real times on the post's platform and topic. Where the real posts answer "
        "one another, the same share of synthetic posts are replies, written with their parent "
        "post in the prompt and as deep as the real threads go. Where the real posts carry "
        "kinds, the same share of synthetic posts are reposts: a synthetic account resharing a "
        "synthetic post of the topic, no model asked; engagement counts are drawn from the real "
        "posts of the persona and topic, followers from the real account each synthetic account "
        "takes after. A platform whose input has no authors, timestamps, reply ids or kinds has "
        "none in the synthetic sets either.</p>",
        _carried_table(carried),
    ]
    if curves is not None and curves.num_rows:
        parts.append(_curves_plot(curves, datasets, png))
    parts.append("<h3>Metrics, all platforms</h3>")
    parts.append(_metric_table(rows, datasets, schema.ALL_PLATFORMS))
    platforms = sorted({r["platform"] for r in rows} - {schema.ALL_PLATFORMS})
    parts += [
        f"<details><summary>{html.escape(p)}</summary>{_metric_table(rows, datasets, p)}</details>"
        for p in platforms
    ]
    if drawings is not None and drawings.num_rows:
        parts.append(
            "<h3>The top of the cross-platform graph</h3><p class='muted'>The 40 best-connected "
            "hashtags (#), domains and mentions (@) of each set, coloured by platform; dashed: "
            "the same item on two platforms.</p>"
        )
        parts.append(_drawings(drawings, datasets, png))
    if account:
        parts.append(_account_html(account))
    return "\n".join(parts)


def _carried_table(carried: dict[str, dict[str, dict[str, int]]]) -> str:
    """dataset -> platform -> {posts, accounts, with_timestamp, with_reply_to, ...}."""
    lines = [
        "<table><tr><th class='l'>set</th><th class='l'>platform</th><th>posts</th>"
        "<th>accounts</th><th>posts with a time</th><th>replies</th><th>with a thread</th>"
        "<th>quoting or resharing</th><th>reposts</th><th class='l'>engagement counts</th></tr>"
    ]
    for dataset, platforms in carried.items():
        for platform, counts in platforms.items():
            engagement = ", ".join(
                f"{name} ({counts[f'with_{name}']:,})"
                for name in schema.ENGAGEMENT
                if counts.get(f"with_{name}")
            )
            lines.append(
                f"<tr><td class='l'>{html.escape(dataset)}</td><td class='l'>{html.escape(platform)}"
                f"</td><td>{counts.get('posts', 0):,}</td><td>{counts.get('accounts', 0):,}</td>"
                f"<td>{counts.get('with_timestamp', 0):,}</td>"
                + "".join(
                    f"<td>{counts.get(f'with_{name}', 0):,}</td>"
                    for name in ("reply_to", "thread_id", "quote_of")
                )
                + f"<td>{counts.get('kind_repost', 0):,}</td>"
                f"<td class='l'>{html.escape(engagement) or '-'}</td></tr>"
            )
    return "\n".join([*lines, "</table>"])


def _curves_plot(curves: pa.Table, datasets: list[str], png) -> str:
    rows = curves.to_pylist()
    platforms = sorted({r["platform"] for r in rows})
    figure, axes = plt.subplots(
        2, len(platforms), figsize=(3.4 * len(platforms), 6.2), squeeze=False
    )
    for column, platform in enumerate(platforms):
        for row, curve in enumerate(("posts_per_account", "hour_of_day")):
            axis = axes[row][column]
            for index, dataset in enumerate(datasets):
                points = [
                    (r["point"], r["share"])
                    for r in rows
                    if r["dataset"] == dataset and r["platform"] == platform and r["curve"] == curve
                ]
                if points:
                    style = (
                        {"color": "0.2", "linewidth": 2} if index == 0 else {"color": f"C{index}"}
                    )
                    axis.plot(*zip(*points, strict=True), label=dataset, **style)
            if curve == "posts_per_account":
                axis.set_xscale("log")
                axis.set_yscale("log")
                axis.set_title(f"{platform}: accounts with ≥ x posts", fontsize=9)
            else:
                axis.set_title(f"{platform}: posts by hour (UTC)", fontsize=9)
                axis.set_xticks([0, 6, 12, 18, 23])
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return png(figure)


def _metric_table(rows: list[dict], datasets: list[str], platform: str) -> str:
    mine = [r for r in rows if r["platform"] == platform]
    by_key = {(r["dataset"], r["family"], r["metric"]): r for r in mine}
    keys = list(dict.fromkeys((r["family"], r["metric"]) for r in mine))
    head = "".join(f"<th>{html.escape(d)}</th>" for d in datasets)
    lines = [f"<table><tr><th class='l'>family</th><th class='l'>metric</th>{head}</tr>"]
    for family, metric in keys:
        cells = []
        for dataset in datasets:
            row = by_key.get((dataset, family, metric))
            cells.append(f"<td>{_value(row)}</td>")
        title = next((text for name, text in GRAPHS.items() if metric.startswith(name)), "")
        copied = any(by_key.get((d, family, metric), {}).get("by_construction") for d in datasets)
        shown = html.escape(metric) + (
            " <span class='muted'>(by construction: no evidence)</span>" if copied else ""
        )
        lines.append(
            f"<tr><td class='l'>{family}</td><td class='l' title='{html.escape(title)}'>"
            f"{shown}</td>{''.join(cells)}</tr>"
        )
    return "\n".join([*lines, "</table>"])


def _value(row: dict | None) -> str:
    if row is None or row["value"] != row["value"]:
        return "–"
    value = row["value"]
    counted = row["metric"].endswith(COUNTS)
    text = f"{value:,.0f}" if counted else _three(value)
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is not None and low == low and high == high:
        text += f" <span class='muted'>[{_three(low)}, {_three(high)}]</span>"
    return text


def _three(value: float) -> str:
    """Three decimals, and no "-0.000" for a value that rounds to zero (modularity, a KS of -1e-17)."""
    text = f"{value:.3f}"
    return text[1:] if text == "-0.000" else text


def _drawings(drawings: pa.Table, datasets: list[str], png) -> str:
    rows = drawings.to_pylist()
    shown = [d for d in datasets if any(r["dataset"] == d for r in rows)]
    platforms = sorted({r["platform_a"] for r in rows} | {r["platform_b"] for r in rows})
    colour = {p: PLATFORM_COLOURS[i % len(PLATFORM_COLOURS)] for i, p in enumerate(platforms)}
    columns = min(3, len(shown))
    lines = (len(shown) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(5 * columns, 4.6 * lines), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, dataset in zip(axes.flat, shown, strict=False):
        graph = nx.Graph()
        for r in rows:
            if r["dataset"] == dataset:
                graph.add_edge(
                    (r["platform_a"], r["item_a"]),
                    (r["platform_b"], r["item_b"]),
                    weight=r["weight"],
                    link=r["link"],
                )
        layout = nx.spring_layout(graph, seed=0, k=1.5 / np.sqrt(max(graph.number_of_nodes(), 1)))
        degree = dict(graph.degree())
        nx.draw_networkx_edges(
            graph,
            layout,
            ax=axis,
            edgelist=[e for e in graph.edges() if not graph.edges[e]["link"]],
            alpha=0.25,
        )
        nx.draw_networkx_edges(
            graph,
            layout,
            ax=axis,
            edgelist=[e for e in graph.edges() if graph.edges[e]["link"]],
            style="dashed",
            edge_color="black",
        )
        nx.draw_networkx_nodes(
            graph,
            layout,
            ax=axis,
            node_color=[colour[n[0]] for n in graph.nodes()],
            node_size=[20 + 8 * degree[n] for n in graph.nodes()],
        )
        top = sorted(graph.nodes(), key=lambda n: -degree[n])[:8]
        nx.draw_networkx_labels(graph, layout, {n: n[1][:18] for n in top}, ax=axis, font_size=6)
        axis.set_title(dataset, fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=colour[p], label=p) for p in platforms]
    figure.legend(handles=handles, loc="lower center", ncol=len(platforms), fontsize=8)
    return png(figure)


def _account_html(account: dict[str, Any]) -> str:
    """A synthetic account's posts beside real posts of its persona."""

    def posts(items: list[dict]) -> str:
        return "".join(
            f"<div class='post'><span class='muted'>{html.escape(str(p.get('timestamp') or ''))} · "
            f"{html.escape(p['author'])}</span><br>{html.escape(p['text'])}</div>"
            for p in items
        )

    return (
        "<h3>One synthetic account beside its persona</h3>"
        f"<p class='muted'>{html.escape(account['dataset'])}: {html.escape(account['author'])} on "
        f"{html.escape(account['platform'])}, persona {account['persona']} ({account['persona_accounts']}"
        " real accounts). Left: its posts; right: posts of the persona's real accounts.</p>"
        "<table style='width:100%'><tr><th class='l' style='width:50%'>synthetic account</th>"
        "<th class='l'>its persona's real accounts</th></tr><tr>"
        f"<td class='l' style='vertical-align:top'>{posts(account['synthetic'])}</td>"
        f"<td class='l' style='vertical-align:top'>{posts(account['real'])}</td></tr></table>"
    )
