"""The report's account of what postprocessing and the privacy guard did: composition against its
targets, the copy filter's drops, the identifiers kept out of the prompts."""

from __future__ import annotations

import html
from typing import Any

from mpsynth.report.html import counts_table

COMPOSITION_COLUMNS = {
    "target": "target",
    "accepted_first_round": "first round",
    "rounds": "deficit rounds",
    "requests_added": "requests added",
    "surplus_trimmed": "surplus trimmed",
    "accepted": "accepted",
    "shortfall": "shortfall",
    "js_first_round": "JS first round",
    "js": "JS",
}


def steps_section(
    copies: dict[str, dict[str, int]],
    masked: dict[str, int],
    composition: dict[str, dict[str, Any]] | None = None,
    deficit: dict[str, dict[str, Any]] | None = None,
) -> str:
    """What postprocessing dropped from each synthetic set, how it met the composition targets
    (a labelled run: its class targets, `deficit`), and what the privacy guard kept out of the
    prompts (empty when none of them ran)."""
    from mpsynth.stages.postprocess.copies import REASONS

    parts = []
    if deficit:
        parts += [
            "<h2>Class targets</h2>",
            "<p>Posts each class lacked against its target after the copy and label filters, "
            "before and after the deficit rounds (which ask again for what is short).</p>",
            '<table><tr><th class="l"></th><th class="l">short before</th><th>deficit rounds'
            '</th><th>requests added</th><th class="l">still short</th></tr>'
            + "".join(
                f'<tr><td class="l">{html.escape(name)}</td>'
                f'<td class="l">{html.escape(classes_text(d["before"]))}</td><td>{d["rounds"]}</td>'
                f'<td>{d["requests"]:,}</td><td class="l">{html.escape(classes_text(d["after"]))}</td>'
                "</tr>"
                for name, d in sorted(deficit.items())
            )
            + "</table>",
        ]
    if composition:
        head = "".join(f"<th>{label}</th>" for label in COMPOSITION_COLUMNS.values())
        body = "".join(
            f'<tr><td class="l">{html.escape(name)}</td>'
            + "".join(f"<td>{_cell(row.get(key))}</td>" for key in COMPOSITION_COLUMNS)
            + "</tr>"
            for name, row in sorted(composition.items())
        )
        parts += [
            "<h2>Composition</h2>",
            "<p>Accepted posts per platform x topic cell (per-platform sets: per platform) against "
            "targets from the real posts scaled to n_posts; deficit rounds request what the short "
            "cells lack, and posts beyond a cell's target are trimmed. JS: Jensen-Shannon "
            "divergence (base 2) between the real and synthetic cell distributions.</p>",
            f'<table><tr><th class="l"></th>{head}</tr>{body}</table>',
        ]
    if copies:
        columns = [c.replace("_", " ") for c in ["before", *REASONS, "kept"]]
        spaced = {n: {k.replace("_", " "): v for k, v in c.items()} for n, c in copies.items()}
        parts += [
            "<h2>Copy filter</h2>",
            "<p>Synthetic posts dropped after generation because they copy a real post, nearly "
            "copy (character 5-shingle Jaccard &ge; 0.8) the examples their prompt showed or any "
            "real post, or nearly repeat an earlier post of the same set.</p>",
            counts_table(spaced, columns),
        ]
    if masked:
        parts += [
            "<h2>Privacy guard</h2>",
            "<p>Identifiers replaced by placeholders in the few-shot examples sent to hosted "
            "providers (occurrences; distinct values).</p>",
            counts_table(
                {
                    kind: {
                        "occurrences": masked.get(f"masked {kind}", 0),
                        "distinct": masked.get(f"masked distinct {kind}", 0),
                    }
                    for kind in ("handles", "urls", "emails", "phones")
                },
                ["occurrences", "distinct"],
            ),
        ]
    return "\n".join(parts)


def classes_text(counts: dict[str, int]) -> str:
    """Posts per class, for a table cell ("none" when empty)."""
    return ", ".join(f"{label} {n:,}" for label, n in counts.items()) or "none"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
