"""Labels: each post's classes and the split it belongs to, for a labelled run.

A multi-label input (GoEmotions' ";"-joined emotions) is read through the config's mapping (for
example the Ekman grouping). In a multi-label run (`labelled.multi_label`, on by default when a
separator is set) a post keeps every class it maps to, written as one label: the classes sorted and
joined by "+" ("anger+sadness"), the unit that pools, prompts and class targets work in; the
classifiers read the classes inside it. In a single-label run a post whose labels map to more than
one class is left out and counted. A post with no class is left out. Each post gets one role:

- seed: the small real training set everything is learnt from (classifier, cues, pools, the
  offline generator);
- reserve: the rest of the training split, the "more real posts" the utility protocol adds;
- validation: model selection only;
- test: the utility protocol's test set, never read by training, cues, pools or prompts.

The roles come from the input's split column (train/validation/test, its values mapped) or, without
one, from a seeded stratified split. Pure logic: a table in, tables out.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.model_selection import train_test_split

from mpsynth.config.labelled import LabelledConfig
from mpsynth.core.errors import ConfigError, InputError
from mpsynth.labelled.classifier import JOIN
from mpsynth.rundir.context import StageContext, write_table

log = logging.getLogger(__name__)

ROLES = ("seed", "reserve", "validation", "test")
TRAINING_ROLES = frozenset({"seed", "reserve", "validation"})  # what training may ever see
SPLIT_VALUES = {
    "train": "train",
    "training": "train",
    "val": "validation",
    "valid": "validation",
    "validation": "validation",
    "dev": "validation",
    "test": "test",
}

# GoEmotions' 27 emotions grouped into Ekman's six plus neutral (Demszky et al., 2020, table 9).
GOEMOTIONS_EKMAN = {
    **dict.fromkeys(["anger", "annoyance", "disapproval"], "anger"),
    "disgust": "disgust",
    **dict.fromkeys(["fear", "nervousness"], "fear"),
    **dict.fromkeys(
        [
            "joy",
            "amusement",
            "approval",
            "excitement",
            "gratitude",
            "love",
            "optimism",
            "relief",
            "pride",
            "admiration",
            "desire",
            "caring",
        ],
        "joy",
    ),
    **dict.fromkeys(["sadness", "disappointment", "embarrassment", "grief", "remorse"], "sadness"),
    **dict.fromkeys(["surprise", "realization", "confusion", "curiosity"], "surprise"),
    "neutral": "neutral",
}
MAPPINGS: dict[str, dict[str, str]] = {"goemotions_ekman": GOEMOTIONS_EKMAN}

LABELS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)
DROPPED_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
    ]
)


def label_mapping(config: LabelledConfig) -> dict[str, str]:
    if isinstance(config.mapping, dict):
        return dict(config.mapping)
    if config.mapping not in MAPPINGS:
        raise ConfigError(
            f"labelled.mapping: no packaged mapping {config.mapping!r} "
            f"(packaged: {', '.join(sorted(MAPPINGS))}; or give label: class pairs)"
        )
    return MAPPINGS[config.mapping]


def classes_in(label: str) -> list[str]:
    """The classes a label holds (one, or a multi-label run's combination)."""
    return label.split(JOIN)


def label_set(raw: str | None, separator: str | None, mapping: dict[str, str]) -> str | None:
    """A multi-label post's classes as one label (sorted, joined by JOIN), or None with no label."""
    if raw is None or not raw.strip():
        return None
    parts = raw.split(separator) if separator else [raw]
    classes = sorted({mapping.get(p.strip(), p.strip()) for p in parts if p.strip()})
    return JOIN.join(classes) if classes else None


def single_label(raw: str | None, separator: str | None, mapping: dict[str, str]) -> str | None:
    """The post's one class, or None with no label; raises ValueError when it maps to several."""
    if raw is None or not raw.strip():
        return None
    parts = raw.split(separator) if separator else [raw]
    classes = {mapping.get(p.strip(), p.strip()) for p in parts if p.strip()}
    if len(classes) > 1:
        raise ValueError(" and ".join(sorted(classes)))
    return classes.pop() if classes else None


@dataclass
class Assigned:
    labels: pa.Table  # id, label, split (one of ROLES)
    dropped: pa.Table  # id, label, reason
    summary: dict


def assign_labels(posts: pa.Table, config: LabelledConfig, seed: int) -> Assigned:
    """Classes and roles for every post that has a class (exactly one, in a single-label run)."""
    mapping = label_mapping(config)
    wanted = set(config.classes) if config.classes is not None else None
    multi = config.is_multi_label
    if multi and (joined := sorted(c for c in [*mapping.values(), *(wanted or ())] if JOIN in c)):
        raise ConfigError(f"labelled: class {joined[0]!r} holds {JOIN!r}, which joins classes")
    _check_raw_labels(
        posts.column("id").to_pylist(), posts.column("label").to_pylist(), config.separator, mapping
    )
    ids, labels, splits = [], [], []
    dropped: dict[str, list] = {"id": [], "label": [], "reason": []}
    for post_id, raw, split in zip(
        posts.column("id").to_pylist(),
        posts.column("label").to_pylist(),
        posts.column("split").to_pylist(),
        strict=True,
    ):
        try:
            label = (label_set if multi else single_label)(raw, config.separator, mapping)
            reason = None if label is not None else "no label"
        except ValueError as several:
            label, reason = None, f"multi-label: {several}"
        if label is not None and wanted is not None:
            kept = [c for c in classes_in(label) if c in wanted]
            if kept and (multi or len(kept) == len(classes_in(label))):
                label = JOIN.join(kept)  # multi-label: the wanted classes it holds
            else:
                reason = "class not in labelled.classes"
        if reason is not None:
            dropped["id"].append(post_id)
            dropped["label"].append(raw)
            dropped["reason"].append(reason)
            continue
        ids.append(post_id)
        labels.append(label)
        splits.append(split)
    found = {c for label in set(labels) for c in classes_in(label)}
    if wanted is not None and (missing := wanted - found):
        raise InputError(f"labelled.classes: no post has class {', '.join(sorted(missing))}")
    if len(found) < 2:
        raise InputError(
            f"a labelled run needs at least two classes; found {sorted(set(labels))} "
            f"(is ingest's label column right?)"
        )
    roles, sources = _roles(np.array(labels, dtype=object), splits, config, seed)
    ids, labels, roles = _without_seedless_classes(ids, labels, roles, dropped, wanted)
    table = pa.table({"id": ids, "label": labels, "split": roles.tolist()}, schema=LABELS_SCHEMA)
    summary = {
        "classes": {
            role: dict(sorted(Counter(np.array(labels, dtype=object)[roles == role]).items()))
            for role in ROLES
        },
        "dropped": dict(Counter(r.split(":")[0] for r in dropped["reason"])),
        "sources": sources,
        "multi_label": multi,
    }
    if multi:  # the posts holding each class, beside the combinations above
        summary["class_posts"] = {
            role: dict(
                sorted(
                    Counter(
                        c for i in np.flatnonzero(roles == role) for c in classes_in(labels[i])
                    ).items()
                )
            )
            for role in ROLES
        }
    return Assigned(table, pa.Table.from_pydict(dropped, schema=DROPPED_SCHEMA), summary)


def _check_raw_labels(
    ids: list[str], raw: list[str | None], separator: str | None, mapping: dict[str, str]
) -> None:
    """Refuse labels the run would misread: a class holding the character that joins a post's
    classes (it would be split into two classes in silence), and a separator no label holds (each
    joined combination would become a class of its own)."""
    for post_id, label in zip(ids, raw, strict=True):
        if not label:
            continue
        parts = label.split(separator) if separator else [label]
        for part in parts:
            name = mapping.get(part.strip(), part.strip())
            if JOIN in name:
                raise InputError(
                    f"label {label!r} of post {post_id!r} holds {JOIN!r}, which joins a post's "
                    f"classes: map it to a name without {JOIN!r} (labelled.mapping: "
                    f"{{{part.strip()!r}: ...}}), or set labelled.separator to {JOIN!r} if it "
                    "joins several labels"
                )
    if separator is not None and not any(label and separator in label for label in raw):
        signs = Counter(c for label in raw if label for c in set(label) if not c.isalnum())
        held = ", ".join(f"{c!r} ({n:,} labels)" for c, n in signs.most_common(5)) or "none"
        raise InputError(
            f"labelled.separator {separator!r} occurs in no label; the characters other than "
            f"letters and digits that labels do hold: {held}"
        )


def _without_seedless_classes(
    ids: list[str], labels: list[str], roles: np.ndarray, dropped: dict, wanted: set | None
) -> tuple[list[str], list[str], np.ndarray]:
    """Drop each class no seed post holds (nothing can be learnt or prompted from it), with a
    warning naming it and where its posts were; a post of several classes keeps the others."""
    seeded = {c for label, role in zip(labels, roles, strict=True) if role == "seed"
              for c in classes_in(label)}  # fmt: skip
    missing = sorted({c for label in labels for c in classes_in(label)} - seeded)
    if not missing:
        return ids, labels, roles
    where = {c: Counter() for c in missing}
    keep_ids, keep_labels, keep_roles = [], [], []
    for post_id, label, role in zip(ids, labels, roles.tolist(), strict=True):
        for c in classes_in(label):
            if c in where:
                where[c][role] += 1
        kept = [c for c in classes_in(label) if c not in where]
        if not kept:
            dropped["id"].append(post_id)
            dropped["label"].append(label)
            dropped["reason"].append("no seed post: its class has none")
            continue
        keep_ids.append(post_id)
        keep_labels.append(JOIN.join(kept))
        keep_roles.append(role)
    for c in missing:
        places = ", ".join(f"{n} in {role}" for role, n in sorted(where[c].items()))
        log.warning(
            "labels: class %r has no seed post (its posts: %s); dropped from the run, its posts "
            "to labels/dropped.parquet (a post with other classes keeps those)",
            c,
            places,
        )
    if wanted is not None and (lost := wanted & set(missing)):
        raise InputError(
            f"labelled.classes: class {', '.join(sorted(lost))} has no seed post "
            "(raise labelled.split.seed_size, or leave the class out)"
        )
    if len({c for label in keep_labels for c in classes_in(label)}) < 2:
        raise InputError(
            f"a labelled run needs at least two classes with seed posts; {', '.join(missing)} "
            "have none"
        )
    return keep_ids, keep_labels, np.array(keep_roles, dtype=object)


def _roles(
    labels: np.ndarray, splits: list[str | None], config: LabelledConfig, seed: int
) -> tuple[np.ndarray, dict[str, str]]:
    """Each post's role, and where each role came from (for the summary, report and card)."""
    split = config.split
    present = [s is not None and s.strip() != "" for s in splits]
    mode = split.mode
    if mode == "auto":
        if all(present):
            mode = "column"
        elif not any(present):
            mode = "random"
        else:
            raise InputError(
                f"{present.count(False)} of {len(present)} labelled posts have no split value: "
                f"fill the split column, or set labelled.split.mode: random"
            )
    n = len(labels)
    base = np.empty(n, dtype=object)
    sources: dict[str, str] = {}
    if mode == "column":
        known = {**SPLIT_VALUES, **split.values}
        unknown = sorted({s for s in splits if s is None or s.strip().lower() not in known})
        if unknown:
            raise InputError(
                f"split values {unknown} are not train, validation or test: map them with "
                f"labelled.split.values (e.g. {{{unknown[0]!s}: test}})"
            )
        given = [s.strip() for s in splits]
        base[:] = [known[s.lower()] for s in given]
        for role in ("train", "validation", "test"):
            names = sorted({g for g, b in zip(given, base, strict=True) if b == role})
            if names:
                sources[role] = f"split column ({', '.join(names)})"
        if not (base == "train").any():
            raise InputError(
                "no labelled post falls in the train split: the split column's values are "
                f"{sorted(set(given))}; map one to train with labelled.split.values"
            )
        # a corpus published as train/test or train/dev: carve the missing role from train
        for role, fraction in (
            ("test", split.test_fraction),
            ("validation", split.validation_fraction),
        ):
            if role in sources:
                continue
            train = np.flatnonzero(base == "train")
            size = max(1, round(fraction * n))
            if size >= len(train):
                raise InputError(
                    f"the input has no {role} split and its {len(train)} training posts are too "
                    f"few to carve {size} from ({role} fraction {fraction})"
                )
            _, carved = train_test_split(
                train,
                test_size=size,
                stratify=_stratifiable(labels[train]),
                random_state=seed + (3 if role == "test" else 4),
            )
            base[carved] = role
            sources[role] = (
                f"carved from train ({len(carved):,} posts, {fraction:.0%} of all; seeded, "
                "stratified)"
            )
            log.warning(
                "labels: the split column has no %s split; %s",
                role,
                sources[role].replace("carved", "carved it", 1),
            )
    else:
        everything = np.arange(n)
        rest, test = train_test_split(
            everything,
            test_size=split.test_fraction,
            stratify=_stratifiable(labels),
            random_state=seed,
        )
        train, validation = train_test_split(
            rest,
            test_size=split.validation_fraction / (1 - split.test_fraction),
            stratify=_stratifiable(labels[rest]),
            random_state=seed + 1,
        )
        base[train], base[validation], base[test] = "train", "validation", "test"
        sources = {
            role: "random split (seeded, stratified)" for role in ("train", "validation", "test")
        }
    for role in ("train", "validation", "test"):
        if not (base == role).any():
            raise InputError(f"no labelled post falls in the {role} split")
    roles = base.copy()
    train = np.flatnonzero(base == "train")
    roles[train] = "seed"
    sources["seed"] = sources["reserve"] = sources.pop("train")
    if split.seed_size is not None and split.seed_size < len(train):
        _, reserve = train_test_split(
            train,
            train_size=split.seed_size,
            stratify=_stratifiable(labels[train]),
            random_state=seed + 2,
        )
        roles[reserve] = "reserve"
    return roles, {role: sources[role] for role in ROLES}


def _stratifiable(labels: np.ndarray) -> np.ndarray | None:
    """Strata for a split: each label, a rare class combination (under ten posts) by its first
    class; None when a stratum is still too rare (scikit-learn needs two posts of each)."""
    counts = Counter(labels.tolist())
    strata = np.array(
        [lab if JOIN not in lab or counts[lab] >= 10 else classes_in(lab)[0] for lab in labels],
        dtype=object,
    )
    counts = Counter(strata.tolist())
    return strata if min(counts.values()) >= 2 else None


def run_labels(ctx: StageContext, out: Path) -> dict[str, int]:
    from mpsynth.labelled.labels import assign_labels

    posts = pq.read_table(ctx.path("ingest", "posts.parquet"), columns=["id", "label", "split"])
    result = assign_labels(posts, ctx.config.labelled, ctx.config.seed)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    for role, counts in result.summary["classes"].items():
        if "class_posts" in result.summary:  # multi-label: posts per class, and how many combine
            held = result.summary["class_posts"][role]
            combined = sum(n for label, n in counts.items() if JOIN in label)
            log.info(
                "labels %-10s %6d  %s; %d with several classes",
                role,
                sum(counts.values()),
                class_counts_text(held),
                combined,
            )
        else:
            log.info("labels %-10s %6d  %s", role, sum(counts.values()), class_counts_text(counts))
    if result.dropped.num_rows:
        log.info(
            "labels: %d posts left out (%s)", result.dropped.num_rows, result.summary["dropped"]
        )
    counts = {role: sum(c.values()) for role, c in result.summary["classes"].items()}
    write_table(result.dropped, out / "dropped.parquet")
    return {"labelled": write_table(result.labels, out / "labels.parquet"), **counts}


def class_counts_text(counts: dict[str, int]) -> str:
    return " ".join(f"{label} {n}" for label, n in counts.items())


def labelled_texts(ctx: StageContext, roles: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(texts, labels) of the posts with one of `roles`, read through a filter on the split, so a
    role left out (the test split) is never loaded."""
    labels = pq.read_table(
        ctx.path("labels", "labels.parquet"), filters=[("split", "in", list(roles))]
    )
    ids = labels.column("id").to_pylist()
    if not ids:  # an empty role (no reserve when seed_size is null)
        return [], []
    posts = pq.read_table(
        ctx.path("ingest", "posts.parquet"), columns=["id", "text"], filters=[("id", "in", ids)]
    )
    text_of = dict(
        zip(posts.column("id").to_pylist(), posts.column("text").to_pylist(), strict=True)
    )
    return [text_of[i] for i in ids], labels.column("label").to_pylist()
