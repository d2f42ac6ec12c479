"""viewer.html: one self-contained page to read a run's posts (no server, no network).

Browse each set by platform and topic (named by its keywords), search the text, open a post to see
the real posts its prompt showed, its account, time and thread; flag posts and export the flagged
ids as a file `mpsynth drop RUN_DIR --ids FILE` takes. The posts travel inside the page as JSON;
a set larger than `report.viewer_posts` is shown through a seeded sample of that many (the page
says so).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core import schema
from mpsynth.rundir.context import StageContext

# what a post carries into the page (where its set has the column)
SHOWN = ("id", "platform", "topic", "text", "strategy", "model", "label", "author", "persona",
         "timestamp", "reply_to", "quote_of", "example_ids")  # fmt: skip
TOPIC_WORDS = 4


def viewer_data(ctx: StageContext, sets: list[Path], cap: int) -> dict[str, Any]:
    """The page's data: every set (a seeded sample of `cap` posts where larger), the real posts
    the shown ones drew their examples from, a sample of the real reference, and topic names."""
    rng = np.random.default_rng([ctx.config.seed, 7])
    shown: dict[str, dict[str, Any]] = {}
    wanted: set[str] = set()
    for path in sets:
        table = pq.read_table(path)
        rows = _rows(_sample(table, cap, rng))
        shown[path.stem] = {"total": table.num_rows, "posts": rows}
        wanted.update(e for row in rows for e in row.get("example_ids") or ())
    reference = pq.read_table(ctx.reference())
    browsed = _rows(_sample(reference, cap, rng))
    wanted -= {row["id"] for row in browsed}
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"))
    examples = browsed + _rows(
        posts.filter(pc.is_in(posts.column("id"), pa.array(sorted(wanted), pa.string())))
    )
    from mpsynth.stages.topics import topic_of

    topics = topic_of(ctx.path("topics", "assignments"))
    for row in examples:
        if topics.get(row["id"]) is not None:
            row["topic"] = topics[row["id"]]
    # the real posts travel once, as examples; the real set lists their ids
    shown = {
        schema.REAL: {"total": reference.num_rows, "ids": [row["id"] for row in browsed]},
        **shown,
    }
    return {
        "title": ctx.config.report.title,
        "fingerprint": str(ctx.run.manifest().get("config_hash", ""))[:12],
        "topics": _topic_names(ctx),
        "sets": shown,
        "examples": {row["id"]: row for row in examples},
    }


def _sample(table: pa.Table, cap: int, rng: np.random.Generator) -> pa.Table:
    if table.num_rows <= cap:
        return table
    return table.take(np.sort(rng.choice(table.num_rows, size=cap, replace=False)))


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    table = table.select([c for c in SHOWN if c in table.column_names])
    rows = table.to_pylist()
    for row in rows:
        if row.get("timestamp") is not None:
            row["timestamp"] = row["timestamp"].isoformat().replace("+00:00", "Z")
        for key in [k for k, v in row.items() if v is None]:
            del row[key]  # the page treats a missing key as unknown
    return rows


def _topic_names(ctx: StageContext) -> dict[str, str]:
    topics = pq.read_table(ctx.path("topics", "topics.parquet"), columns=["topic", "keywords"])
    return {
        str(row["topic"]): "outliers" if row["topic"] == -1 else
        f"{row['topic']}: {', '.join((row['keywords'] or [])[:TOPIC_WORDS])}"
        for row in topics.to_pylist()
    }  # fmt: skip


def render_viewer(data: dict[str, Any]) -> str:
    """The page: the data as JSON in a script block (`</` escaped), the script and style inline."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    template = (Path(__file__).parent / "viewer.html").read_text(encoding="utf-8")
    return template.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload)
