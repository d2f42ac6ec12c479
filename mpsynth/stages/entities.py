"""The NER pass of any stage (the pools' enrichment, the evaluation): each distinct text once, looked
up in the entity cache (beside the embedding cache, keyed by the pipeline's weights), the rest
through Ray Data (or in the driver for a small input) and filed for the next caller."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa

from mpsynth.rundir.context import StageContext

log = logging.getLogger(__name__)

ENTITIES = pa.list_(pa.struct([("text", pa.string()), ("label", pa.string())]))
PROGRESS_ROWS = 256


class EntityBatch:
    """Batch callable (Ray Data actor): each text's entities, as ENTITIES, by its cache key."""

    def __init__(self, ner_model: str) -> None:
        from mpsynth.metrics.entities import load_pipeline

        self.nlp = load_pipeline(ner_model)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from mpsynth.metrics.entities import post_entities

        found = post_entities(self.nlp, batch.column("text").to_pylist())
        return pa.table(
            {
                "id": batch.column("id"),
                "entities": pa.array(
                    [[{"text": t, "label": label} for t, label in sorted(f)] for f in found],
                    ENTITIES,
                ),
            }
        )


def cached_entities(
    ctx: StageContext, ner_model: str, texts: list[str], work: Path, stage: str
) -> list[frozenset]:
    """Per text, the (text, label) entities the NER pipeline finds, each distinct text run at most
    once: repeats within the call and texts already in the entity cache are looked up. `stage`:
    the caller, for the progress line and its Ray resources."""
    from mpsynth.embedders.cache import split_known, text_keys
    from mpsynth.metrics.entities import pipeline_identity
    from mpsynth.stages.embed import text_cache, through_model

    store = text_cache(ctx, "entities", lambda: pipeline_identity(ner_model))
    keys = text_keys(texts)
    first, stored, missing = split_known(store, keys)
    parts = [] if stored is None else [stored]
    if len(missing):
        parts.append(
            through_model(
                ctx,
                [texts[i] for i in missing],
                keys.take(missing),
                work,
                store,
                EntityBatch,
                {"ner_model": ner_model},
                actors=None,  # one per CPU: spaCy's NER runs on CPUs
                resources=ctx.config.ray.resources_for(stage),
                batch_size=1024,
                progress_rows=PROGRESS_ROWS,
                description=f"{stage}: entities",
            )
        )
    log.info(
        "%s: entities of %d posts, %d distinct, %d from the entity cache",
        stage,
        len(texts),
        len(first),
        len(first) - len(missing),
    )
    if not parts:
        return []
    table = pa.concat_tables(parts)
    by_key = {
        key: frozenset((e["text"], e["label"]) for e in entities)
        for key, entities in zip(
            table.column("id").to_pylist(), table.column("entities").to_pylist(), strict=True
        )
    }
    return [by_key[key] for key in keys.to_pylist()]
