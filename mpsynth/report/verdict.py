"""The report's opening section: each metric's ceiling (the held-out real posts) beside every
synthetic set's value and its gap beyond the ceiling, the largest supported gaps first; then the
MPTM-versus-per-platform interconnection question in a sentence the intervals allow."""

from __future__ import annotations

import html
from collections import defaultdict

from mpsynth.core import schema
from mpsynth.metrics.verdict import Spread, Verdict, interconnection, verdicts

SHOWN = 20  # metrics in the opening table; the rest under "every metric"


def _signed(value: float) -> str:
    text = f"{value:+.3f}"
    return "+0.000" if text == "-0.000" else text


def _cell(v: Verdict) -> str:
    if v.by_construction:
        return f'<td>{v.value:.3f}</td><td class="muted">by construction</td>'
    interval = "" if v.low is None else f"<br><small>{_signed(v.low)} to {_signed(v.high)}</small>"
    if not v.supported:
        tone = "green" if v.low is not None else ""
    else:  # a supported gap; nearer the real value than real posts are: blue
        tone = "blue" if v.real is not None and v.gap < 0 else "red"
    style = f' style="color:{tone}"' if tone else ""
    spread = (
        f"<br><small>sd {v.sd:.3f} over {v.replicates}</small>"
        if v.replicates > 1 and v.sd is not None
        else ""
    )
    return f"<td>{v.value:.3f}{spread}</td><td{style}>{_signed(v.gap)}{interval}</td>"


def _table(found: list[Verdict], names: list[str]) -> str:
    rows: dict[tuple, dict[str, Verdict]] = defaultdict(dict)
    for v in found:
        rows[(v.family, v.metric)][v.dataset] = v
    head = "".join(f"<th>{html.escape(n)}</th><th>gap beyond ceiling</th>" for n in names)
    lines = [
        '<table><tr><th class="l">family</th><th class="l">metric</th><th>real</th>'
        f"<th>ceiling (real-holdout)</th>{head}</tr>"
    ]
    for (family, metric), cells in rows.items():
        first = next(iter(cells.values()))
        real = "–" if first.real is None else f"{first.real:.3f}"
        body = "".join(_cell(cells[n]) if n in cells else "<td>–</td><td>–</td>" for n in names)
        lines.append(
            f'<tr><td class="l">{html.escape(family)}</td><td class="l">{html.escape(metric)}'
            f"</td><td>{real}</td><td>{first.ceiling:.3f}</td>{body}</tr>"
        )
    return "\n".join([*lines, "</table>"])


def verdict_section(metrics: list[dict], spread: Spread | None = None) -> str:
    """HTML for the top of the report; empty when the run held no real posts out. `spread`: each
    metric over the generations the run drew (replicates stage), when it drew several."""
    found = [v for v in verdicts(metrics, spread) if v.platform == schema.ALL_PLATFORMS]
    if not found:
        return ""
    names = sorted({v.dataset for v in found})
    order = list(dict.fromkeys((v.family, v.metric) for v in found))
    top = set(order[:SHOWN])
    sentences = "".join(f"<p><b>{html.escape(s)}</b></p>" for s in interconnection(metrics, spread))
    generations = max((v.replicates for v in found), default=1)
    over = (
        f"Each set's value is its mean over {generations} independent generations (sd beneath "
        "it), and its interval the mean's t-interval over them, which holds the generator's own "
        "variation as well as the posts'. "
        if generations > 1
        else "One generation: the intervals are bootstraps over posts and leave out how much a "
        "second generation would differ (set generate.replicates to measure it). "
    )
    return f"""<h2>Verdict: every metric beside the real data's own ceiling</h2>
<p class="muted">The ceiling is what held-out real posts (never shown to the generator) score on
each metric at the synthetic sets' size. {over}Gap beyond ceiling: for a metric the real posts have a
value of, the set's distance from it minus the holdout's; for a comparison, the set's value minus
the holdout's (a counterpart share above the ceiling means posts nearer the real ones than real
posts are: memorised). 95% intervals; red: a gap beyond the intervals; blue: nearer the real value
than real posts are, beyond the intervals; green: within what the intervals allow. "By construction": the structure stage copies it from the real accounts,
so it is no evidence. Largest supported gaps first; all platforms.</p>
{sentences}
{_table([v for v in found if (v.family, v.metric) in top], names)}
<details><summary>every metric ({len(order)})</summary>{_table(found, names)}</details>"""
