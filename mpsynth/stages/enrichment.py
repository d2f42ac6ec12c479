"""Entity enrichment of the pools (`pools.entity_enrichment`): a share of each pool's examples must
mention an entity of one frequency band of the real corpus (top, middle or bottom 20, as
mpsynth.metrics.entities.frequency_bands defines them). After the usual draw, examples without one
are swapped for posts of the same topic and platform that have one, as far as there are such
posts. The band's entities and the posts mentioning them are written to `pools/enrichment.json`;
deficit rounds draw the same way. The NER pass goes through the entity cache (`cached_entities`)."""

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
    posts = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "text"])
    ids, texts = posts.column("id").to_pylist(), posts.column("text").to_pylist()
    mentions = cached_entities(ctx, config.ner_model, texts, "pools: entities of the real posts")
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


ENTITIES = pa.list_(pa.struct([("text", pa.string()), ("label", pa.string())]))


def cached_entities(
    ctx: StageContext, ner_model: str, texts: list[str], description: str
) -> list[frozenset]:
    """Per text, the (text, label) entities the NER pipeline finds: each distinct text looked up in
    the entity cache (beside the embedding cache, keyed by the pipeline's weights), the rest run
    through the pipeline in chunks, with progress, and filed."""
    from mpsynth.core import console
    from mpsynth.embedders.cache import text_keys
    from mpsynth.metrics.entities import load_pipeline, pipeline_identity, post_entities
    from mpsynth.stages.embed import text_cache

    identity = pipeline_identity(ner_model) if ctx.config.embed.cache else None
    store = text_cache(ctx, "entities", identity)
    keys = text_keys(texts).to_pylist()
    distinct = dict(zip(keys, texts, strict=True))  # each text once
    known: dict[str, frozenset] = {}
    found = store.lookup(pa.array(list(distinct), pa.string())) if store else None
    if found is not None:
        for key, entities in zip(
            found.column("id").to_pylist(), found.column("entities").to_pylist(), strict=True
        ):
            known[key] = frozenset((e["text"], e["label"]) for e in entities)
    missing = [key for key in distinct if key not in known]
    if missing:
        nlp = load_pipeline(ner_model)
        with console.progress(description, len(missing), "posts") as shown:
            for start in range(0, len(missing), 2048):
                chunk = missing[start : start + 2048]
                for key, entities in zip(
                    chunk, post_entities(nlp, [distinct[k] for k in chunk]), strict=True
                ):
                    known[key] = entities
                shown.update(min(start + 2048, len(missing)))
        if store is not None:
            store.add(
                pa.table(
                    {
                        "id": pa.array(missing, pa.string()),
                        "entities": pa.array(
                            [
                                [{"text": t, "label": lab} for t, lab in sorted(known[k])]
                                for k in missing
                            ],
                            ENTITIES,
                        ),
                    }
                )
            )
    log.info(
        "%s: %d posts, %d distinct, %d from the entity cache",
        description.split(":")[0],
        len(texts),
        len(distinct),
        len(distinct) - len(missing),
    )
    return [known[key] for key in keys]


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
