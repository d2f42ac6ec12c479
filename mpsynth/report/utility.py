"""The labelled run's part of the report: F1 against added posts per strategy (macro and the minority
class), the table behind the plot, the cue words, and the per-class linguistic comparison."""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt
import pyarrow as pa

from mpsynth.labelled.utility import EMBEDDINGS, REAL, SEED_ONLY, TFIDF

JUDGE_NAMES = {
    TFIDF: "TF-IDF judge (the cues' family)",
    EMBEDDINGS: "embedding judge (logistic regression on sentence embeddings)",
}

LINGUISTIC_SHOWN = (
    "vocabulary",
    "mattr",
    "distinct_2",
    "pronouns_per_token",
    "share_with_temporal",
)


def _strategies(rows: list[dict]) -> list[str]:
    names = sorted({r["strategy"] for r in rows} - {SEED_ONLY, REAL})
    return [REAL, *names] if any(r["strategy"] == REAL for r in rows) else names


MEASURE_NAMES = {"macro_f1": "macro-F1", "micro_f1": "micro-F1", "jaccard": "Jaccard accuracy"}


def _of(rows: list[dict], shown: str | None) -> list[dict]:
    """The rows of one measure: a whole-task measure by name (None: macro-F1), else a class's F1."""
    if shown is None or shown in MEASURE_NAMES:
        return [r for r in rows if r["measure"] == (shown or "macro_f1")]
    return [r for r in rows if r["measure"] == "f1" and r["class"] == shown]


def _title(shown: str | None, minority: str | None = None) -> str:
    if shown is None or shown in MEASURE_NAMES:
        return MEASURE_NAMES[shown or "macro_f1"]
    return f"F1 of {shown}" + (" (minority)" if shown == minority else "")


def f1_plot(rows: list[dict], shown: list[str | None], png, minority: str | None = None) -> str:
    """One panel per measure or class (None: macro-F1): the mean over repeats against added posts,
    the bootstrap interval as a band, the seed alone as a dashed line."""
    return _panels([(rows, s, _title(s, minority)) for s in shown], png)


def judges_plot(by_judge: dict[str, list[dict]], png) -> str:
    """Macro-F1 under each judge, side by side."""
    return _panels(
        [(rows, None, f"macro-F1, {JUDGE_NAMES[judge]}") for judge, rows in by_judge.items()], png
    )


def _panels(panels: list[tuple[list[dict], str | None, str]], png) -> str:
    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for axis, (rows, label, title) in zip(axes[0], panels, strict=True):
        mine = _of(rows, label)
        for number, strategy in enumerate(_strategies(rows)):
            points = sorted(
                (r for r in mine if r["strategy"] == strategy), key=lambda r: r["added"]
            )
            if not points:
                continue
            x = [p["added"] for p in points]
            colour = "black" if strategy == REAL else colours(number % 10)
            style = "-" if not strategy.endswith(" alone") else ":"
            axis.plot(
                x, [p["value"] for p in points], style, marker="o", color=colour, label=strategy
            )
            if points[0]["ci_low"] is not None:
                axis.fill_between(
                    x,
                    [p["ci_low"] for p in points],
                    [p["ci_high"] for p in points],
                    color=colour,
                    alpha=0.12,
                )
        baseline = [r for r in mine if r["strategy"] == SEED_ONLY]
        if baseline:
            axis.axhline(baseline[0]["value"], color="grey", linestyle="--", label="seed alone")
        axis.set_title(title)
        axis.set_xlabel("posts added")
        axis.set_ylabel("on the real test split")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return png(figure)


def _interval(row: dict) -> str:
    text = f"{row['value']:.3f}"
    if row["ci_low"] is not None:
        text += f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    if row["repeat_sd"] is not None:
        text += f" ±{row['repeat_sd']:.3f}"
    return text


def f1_table(rows: list[dict], label: str | None) -> str:
    """A measure (None: macro-F1) or a class's F1 per strategy and added count."""
    mine = _of(rows, label)
    counts = sorted({r["added"] for r in mine if r["strategy"] != SEED_ONLY})
    baseline = next((r for r in mine if r["strategy"] == SEED_ONLY), None)
    head = "".join(f"<th>+{c}</th>" for c in counts)
    lines = [f'<table><tr><th class="l">strategy</th><th>seed alone</th>{head}</tr>']
    for strategy in _strategies(rows):
        cells = []
        for count in counts:
            row = next((r for r in mine if r["strategy"] == strategy and r["added"] == count), None)
            cells.append(f"<td>{_interval(row)}</td>" if row else "<td>·</td>")
        seed_cell = _interval(baseline) if baseline else "·"
        lines.append(
            f'<tr><td class="l">{html.escape(strategy)}</td><td>{seed_cell}</td>{"".join(cells)}</tr>'
        )
    return "\n".join([*lines, "</table>"])


def cues_table(cues: pa.Table) -> str:
    by_class: dict[str, list[dict]] = {}
    for row in cues.to_pylist():
        by_class.setdefault(row["label"], []).append(row)
    lines = ['<table><tr><th class="l">class</th><th class="l">cue words (score; source)</th></tr>']
    for label, rows in sorted(by_class.items()):
        words = ", ".join(
            f"{html.escape(r['word'])} <span class=muted>({r['score']:.2f}; {r['source']})</span>"
            for r in sorted(rows, key=lambda r: r["rank"])
        )
        lines.append(f'<tr><td class="l">{html.escape(label)}</td><td class="l">{words}</td></tr>')
    return "\n".join([*lines, "</table>"])


def linguistic_table(linguistic: pa.Table) -> str:
    rows = linguistic.to_pylist()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    classes = sorted({r["class"] for r in rows})
    head = "".join(f"<th>{html.escape(d)}</th>" for d in datasets)
    lines = [f'<table><tr><th class="l">class</th><th class="l">measure</th><th>n</th>{head}</tr>']
    for label in classes:
        for metric in LINGUISTIC_SHOWN:
            values = {
                r["dataset"]: r for r in rows if r["class"] == label and r["metric"] == metric
            }
            if not values:
                continue
            n = min(r["n"] for r in values.values())
            cells = "".join(
                f"<td>{values[d]['value']:.3f}</td>"
                if d in values and values[d]["value"] is not None
                else "<td>·</td>"
                for d in datasets
            )
            lines.append(
                f'<tr><td class="l">{html.escape(label)}</td><td class="l">{metric}</td>'
                f"<td>{n}</td>{cells}</tr>"
            )
    return "\n".join([*lines, "</table>"])


def render_utility(
    summary: pa.Table,
    cues: pa.Table,
    linguistic: pa.Table,
    info: dict[str, Any],
    classifier: dict[str, Any],
    labels: dict[str, Any],
    png,
) -> str:
    by_judge: dict[str, list[dict]] = {}
    for row in summary.to_pylist():
        by_judge.setdefault(row["judge"], []).append(row)
    rows = by_judge.get(TFIDF) or next(iter(by_judge.values()))
    minority = info["minority"]
    # a multi-label task's own measures beside macro-F1
    task_measures = [m for m in MEASURE_NAMES if any(r["measure"] == m for r in rows)]
    others = (
        f"""<h3>Two judges</h3>
<p>The same training sets judged by a classifier of another family: logistic regression on
sentence embeddings, which did not pick the cue words. A gain that holds under both judges is not
an artefact of cue words the TF-IDF judge rewards.</p>
{judges_plot(by_judge, png)}
<h3>Macro-F1, embedding judge</h3>
{f1_table(by_judge[EMBEDDINGS], None)}
<h3>F1 of {html.escape(minority)}, embedding judge</h3>
{f1_table(by_judge[EMBEDDINGS], minority)}"""
        if EMBEDDINGS in by_judge and len(by_judge) > 1
        else ""
    )
    scores = ", ".join(f"{k} {v:.3f}" for k, v in classifier["validation_macro_f1"].items())
    faithful = "".join(
        f"<tr><td class=l>{html.escape(c)}</td><td>{v['posts']}</td><td>{v['before']:.3f}</td>"
        f"<td>{v['after']:.3f}</td></tr>"
        for c, v in classifier["faithfulness"].items()
    )
    sources = labels.get("sources") or {}
    roles = "".join(
        f"<tr><td class=l>{role}</td>"
        + "".join(f"<td>{counts.get(c, 0):,}</td>" for c in info["classes"])
        + f"<td class=l>{html.escape(sources.get(role, ''))}</td></tr>"
        # multi-label: the posts holding each class (the combinations are in labels/summary.json)
        for role, counts in (labels.get("class_posts") or labels["classes"]).items()
    )
    class_head = "".join(f"<th>{html.escape(c)}</th>" for c in info["classes"])
    skipped = (
        "<p class=muted>Not run: " + html.escape("; ".join(info["skipped"])) + "</p>"
        if info["skipped"]
        else ""
    )
    multi_note = (
        " Multi-label: a post holds every class it was labelled with; each classifier is one "
        "binary model per class (a post gets every class at probability 0.5 or more, else its "
        "likeliest); Jaccard accuracy is the mean over test posts of |true and predicted classes| "
        "/ |true or predicted classes|, micro-F1 pools every post-class decision."
        if info.get("multi_label")
        else ""
    )
    return f"""
<h2>Utility: training on synthetic posts, testing on real ones</h2>
<p>The {html.escape(info["classifier"])} classifier trained on the real seed plus added posts,
tested on the real test split ({info["posts"]["test"]:,} posts):
{html.escape(", ".join(_title(m) for m in task_measures))} and the F1 of the minority class
({html.escape(minority)}).{multi_note} Bands and brackets: {html.escape(str(info.get("confidence", "")))}
bootstrap intervals over test posts; ± the standard deviation over repeats. <i>real</i> adds
posts from the reserve of real training posts; <i>+SET</i> adds a synthetic set's posts;
<i>SET alone</i> trains on them without the seed.</p>
{f1_plot(rows, [*task_measures, minority], png, minority)}
{"".join(f"<h3>{_title(m)}</h3>{f1_table(rows, m)}" for m in task_measures)}
<h3>F1 of {html.escape(minority)}</h3>
{f1_table(rows, minority)}
{others}
{skipped}
<h3>Classes and splits</h3>
<table><tr><th class=l>split</th>{class_head}<th class=l>from</th></tr>{roles}</table>
<p class=muted>Left out: {html.escape(str(labels.get("dropped") or "none"))}</p>
<h3>Cue words</h3>
<p>Chosen classifier: {html.escape(classifier["chosen"])} (validation macro-F1: {html.escape(scores)}).
Per class, the words with the highest mean of their SHAP and TF-IDF-differential scores.</p>
{cues_table(cues)}
<p>Faithfulness: the classifier's mean probability for a class on its validation posts, as they are
and with the class's prompt cue words removed.</p>
<table><tr><th class=l>class</th><th>posts</th><th>as written</th><th>cues removed</th></tr>{faithful}</table>
<h3>Linguistic richness per class</h3>
<p class=muted>Each measure on the same number of posts per class (n) for every set: real is the seed.</p>
{linguistic_table(linguistic)}
"""
