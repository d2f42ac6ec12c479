"""Named entities: which of the real set's 20 most and 20 least frequent entities the synthetic set
mentions, how well their frequencies rank alike, and the same per entity label.

Any spaCy pipeline with an `ner` (or `entity_ruler`) component, loaded with `spacy.load(name_or_path)`.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

from mpsynth.core.errors import MissingDependencyError

TOP_K = 20
MAX_CHARS = 5_000  # a pathological post is cut, bounding its time in the pipeline


@cache
def load_pipeline(name_or_path: str):
    import spacy

    try:
        return spacy.load(name_or_path)
    except OSError:
        raise MissingDependencyError(
            f"evaluate.ner_model={name_or_path!r}: no such spaCy pipeline",
            f"python -m spacy download {name_or_path}, or give the path of a saved pipeline",
        ) from None


def post_entities(nlp, texts: list[str], batch_size: int = 256) -> list[frozenset]:
    """Per post, the (entity text case-folded, label) pairs it mentions."""
    return [
        frozenset((" ".join(ent.text.split()).casefold(), ent.label_) for ent in doc.ents)
        for doc in nlp.pipe((t[:MAX_CHARS] for t in texts), batch_size=batch_size)
    ]


def entity_counts(nlp, texts: list[str], batch_size: int = 256) -> Counter:
    """(entity text case-folded, label) -> number of posts mentioning it."""
    return Counter(
        entity for mentions in post_entities(nlp, texts, batch_size) for entity in mentions
    )


def _ranked(counts: Counter) -> list:
    """Entities by frequency, ties broken by name, so the selection is deterministic."""
    return sorted(counts, key=lambda e: (-counts[e], e))


def entity_metrics(real: Counter, synthetic: Counter, top_k: int = TOP_K) -> dict[str, float]:
    from scipy.stats import spearmanr

    if not real:
        return {}
    ranked = _ranked(real)
    most, least = ranked[:top_k], ranked[-top_k:]
    out = {
        f"top{top_k}_real_entities_found": sum(e in synthetic for e in most) / len(most),
        f"bottom{top_k}_real_entities_found": sum(e in synthetic for e in least) / len(least),
    }
    if len(most) >= 3:
        rho = spearmanr([real[e] for e in most], [synthetic.get(e, 0) for e in most]).statistic
        out[f"top{top_k}_frequency_rank_correlation"] = float(rho) if rho == rho else 0.0
    for label in sorted({label for _, label in real}):
        of_label = [e for e in ranked if e[1] == label][:top_k]
        out[f"top{top_k}_{label}_found"] = sum(e in synthetic for e in of_label) / len(of_label)
    return out
