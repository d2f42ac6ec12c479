"""Posts a reviewer dropped from a run's sets (`mpsynth drop RUN_DIR --ids FILE`).

The list lives in the run directory, `review/drops.parquet` (set, id, reason, when), and is part of
the fingerprint of the stage that writes the run's final sets (structure; postprocess in labelled
runs): that stage leaves the listed posts out, with every reply beneath them, keeps what it left
out in `<stage>/dropped/<set>.parquet` and counts it in its summary's `review`; the evaluation, the report and the card follow as
for any upstream change. Nothing is lost: a drop is undone by removing its rows from the list.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpsynth.core.errors import ConfigError
from mpsynth.core.locations import is_remote

DROPS = Path("review") / "drops.parquet"
EVERY_SET = "*"  # an id listed without a set: dropped from every set that holds it
DROPS_SCHEMA = pa.schema(
    [
        pa.field("set", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("dropped_at", pa.float64(), nullable=False),  # unix time
    ]
)


def read_ids_file(path: Path) -> list[tuple[str, str]]:
    """(set, id) pairs from a file of `SET<TAB>ID` or `ID` lines (the viewer's export); blank lines
    and `#` comments are skipped. A line with more than two fields names the file and line."""
    if not path.is_file():
        raise ConfigError(f"--ids {path}: no such file")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) > 2 or not all(fields):
            raise ConfigError(f"{path}, line {number}: expected 'SET<TAB>ID' or 'ID', got {line!r}")
        pairs.append((fields[0], fields[1]) if len(fields) == 2 else (EVERY_SET, fields[0]))
    if not pairs:
        raise ConfigError(f"{path}: no ids in it (one 'SET<TAB>ID' or 'ID' per line)")
    return pairs


def read_drops(run_dir: Path) -> pa.Table:
    path = Path(run_dir) / DROPS
    return pq.read_table(path) if path.is_file() else DROPS_SCHEMA.empty_table()


def record_drops(run_dir: Path, pairs: list[tuple[str, str]], reason: str) -> int:
    """Add (set, id) pairs to the run's list; the number not already on it."""
    if is_remote(run_dir):
        raise ConfigError(
            f"{run_dir}: drop posts from a local copy of a run directory (mpsynth drop reads and "
            "rewrites its sets in place)"
        )
    known = read_drops(run_dir)
    listed = set(zip(known.column("set").to_pylist(), known.column("id").to_pylist(), strict=True))
    new = list(dict.fromkeys(p for p in pairs if p not in listed))
    if new:
        added = pa.table(
            {
                "set": [s for s, _ in new],
                "id": [i for _, i in new],
                "reason": [reason] * len(new),
                "dropped_at": [time.time()] * len(new),
            },
            schema=DROPS_SCHEMA,
        )
        path = Path(run_dir) / DROPS
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables([known, added]), path)
    return len(new)


def dropped_posts(run_dir: Path | str) -> dict[str, str]:
    """What the list holds, as a fingerprint input of the stage that applies it: {} without a list,
    so a run nobody reviewed keeps the fingerprints it had."""
    if is_remote(run_dir):
        return {}
    drops = read_drops(Path(run_dir))
    if not drops.num_rows:
        return {}
    pairs = sorted(
        zip(drops.column("set").to_pylist(), drops.column("id").to_pylist(), strict=True)
    )
    return {"dropped": hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]}


def apply_drops(
    drops: pa.Table, table: pa.Table, set_name: str, out: Path
) -> tuple[pa.Table, dict[str, int]]:
    """`table` without the posts `drops` (the run's list, `read_drops`) names for `set_name` (or
    for every set) and the replies beneath them; what was left out is written to
    `out/dropped/<set>.parquet` with the reason."""
    if not drops.num_rows:
        return table, {}
    mine = drops.filter(pc.is_in(drops.column("set"), pa.array([set_name, EVERY_SET])))
    reasons = dict(
        zip(mine.column("id").to_pylist(), mine.column("reason").to_pylist(), strict=True)
    )
    ids = table.column("id").to_pylist()
    asked = {i for i in ids if i in reasons}
    gone = set(asked)
    # the replies beneath a dropped post go with it, and its reposts
    links = [
        table.column(c).to_pylist() for c in ("reply_to", "quote_of") if c in table.column_names
    ]
    while links:
        beneath = {
            i for i, *parents in zip(ids, *links, strict=True) if any(p in gone for p in parents)
        } - gone
        if not beneath:
            break
        gone |= beneath
    if not gone:
        return table, {}
    mask = pa.array([i in gone for i in ids])
    dropped = table.filter(mask)
    why = [
        reasons.get(i, "a reply or repost beneath a dropped post")
        for i in dropped.column("id").to_pylist()
    ]
    (out / "dropped").mkdir(exist_ok=True)
    pq.write_table(
        dropped.append_column("reason", pa.array(why, pa.string())),
        out / "dropped" / f"{set_name}.parquet",
    )
    return table.filter(pc.invert(mask)), {
        "dropped": len(asked),
        "replies_dropped": len(gone) - len(asked),
    }
