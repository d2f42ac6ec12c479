"""Entity enrichment of the pools (`pools.entity_enrichment`): a share of each pool's examples must
mention an entity of one frequency band of the real corpus (top, middle or bottom 20, as
mpsynth.metrics.entities.frequency_bands defines them). After the usual draw, examples without one
are swapped for posts of the same topic and platform that have one, as far as there are such
posts. The band's entities and the posts mentioning them are written to `pools/enrichment.json`;
deficit rounds draw the same way. The NER pass goes through the entity cache (`stages.entities.cached_entities`)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mpsynth.rundir.context import StageContext
from mpsynth.stages.entities import cached_entities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Enrichment:
    """Posts that mention an entity of the chosen band, and how many of a pool's k examples must."""

    holders: frozenset[str]
    share: float

    def needed(self, k: int) -> int:
        return min(k, int(np.ceil(self.share * k)))

    def apply(
        self, examples: list[str], candidates: list[str], rng: np.random.Generator
    ) -> list[str]:
        """`examples` with non-holders swapped for holders among `candidates` (the same topic and
        platform) until the pool holds as many as it needs or no holder is left."""
        have = sum(e in self.holders for e in examples)
        need = self.needed(len(examples)) - have
        if need <= 0:
            return examples
        chosen = set(examples)
        spare = [c for c in candidates if c in self.holders and c not in chosen]
        if not spare:
            return examples
        swap_in = [spare[i] for i in rng.permutation(len(spare))[:need].tolist()]
        out = list(examples)
        positions = [i for i, e in enumerate(out) if e not in self.holders]
        for position, post in zip(positions, swap_in, strict=False):
            out[position] = post
        return out


ENRICHMENT_FILE = "enrichment.json"


def find_enrichment(ctx: StageContext, out: Path) -> Enrichment:
    """Run the NER pipeline over the real posts, pick the configured band of entities, and write
    them with the posts that mention one to `out`/enrichment.json."""
    from mpsynth.metrics.entities import frequency_bands

    config = ctx.config.pools.entity_enrichment
    posts = pq.read_table(ctx.reference(), columns=["id", "text"])
    ids, texts = posts.column("id").to_pylist(), posts.column("text").to_pylist()
    mentions = cached_entities(ctx, config.ner_model, texts, out / ".entities", "pools")
    counts = Counter(entity for found in mentions for entity in found)
    bands = frequency_bands(counts)
    band = bands[config.band]
    chosen = set(band)
    holders = [i for i, found in zip(ids, mentions, strict=True) if found & chosen]
    (out / ENRICHMENT_FILE).write_text(
        json.dumps(
            {
                "band": config.band,
                "share": config.share,
                "ner_model": config.ner_model,
                "entities": [
                    {"text": text, "label": label, "posts": counts[(text, label)]}
                    for text, label in band
                ],
                "holders": holders,
                # every band of the real posts, so that a run without enrichment can be read
                # against the same entities
                "bands": {
                    name: [[text, label, counts[(text, label)]] for text, label in members]
                    for name, members in bands.items()
                },
            },
            indent=1,
        )
        + "\n"
    )
    log.info(
        "pools: enrichment with the %s %d entities (%s): %d real posts mention one",
        config.band,
        len(band),
        ", ".join(text for text, _ in band[:5]) + (" ..." if len(band) > 5 else ""),
        len(holders),
    )
    return Enrichment(frozenset(holders), config.share)


def load_enrichment(ctx: StageContext) -> Enrichment | None:
    """The pools stage's enrichment, for the draws after it (deficit rounds); None without one."""
    path = ctx.run.stage_dir("pools") / ENRICHMENT_FILE
    if ctx.config.pools.entity_enrichment is None or not path.is_file():
        return None
    found = json.loads(path.read_text())
    return Enrichment(frozenset(found["holders"]), found["share"])


def enriched_share(pools: pa.Table, enrich: Enrichment) -> float:
    """The share of pools holding as many band posts as they need."""
    met = [
        sum(e in enrich.holders for e in examples) >= enrich.needed(len(examples))
        for examples in pools.column("example_ids").to_pylist()
        if examples
    ]
    return float(np.mean(met)) if met else 0.0
