"""Reading settings: `--set KEY=VALUE` overrides (into nested sections and list items) and
validation errors described one line per setting, naming what a section allows."""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mpsynth.core.errors import ConfigError


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], defaults: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (values parsed as YAML) to a raw config mapping. A number
    picks a list item (`generate.generators.0.temperature=0.5`); a section or list the config leaves
    out starts from its default (`defaults()`: every setting's default, as plain data)."""
    known: dict[str, Any] | None = None
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"override {override!r}: expected KEY=VALUE, e.g. generate.n_posts=200"
            )
        parts = key.strip().split(".")
        node: Any = raw
        for depth, part in enumerate(parts):
            slot = _slot(node, part, override, ".".join(parts[:depth]))
            if depth == len(parts) - 1:
                node[slot] = yaml.safe_load(value)
                break
            if isinstance(node, dict) and node.get(slot) is None:
                if known is None:
                    known = defaults()
                default = _lookup(known, parts[: depth + 1])
                # a list the config leaves out (to index next) starts from the default list
                node[slot] = copy.deepcopy(default) if isinstance(default, list) else {}
            if not isinstance(node[slot], dict | list):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"override {override!r}: {where} is not a section")
            node = node[slot]
    return raw


def _slot(node: Any, part: str, override: str, where: str) -> str | int:
    """The key (in a section) or index (in a list) that `part` names under `where`."""
    if isinstance(node, dict):
        return part
    if not isinstance(node, list):
        raise ConfigError(f"override {override!r}: {where} is not a section")
    if not part.isdigit():
        raise ConfigError(
            f"override {override!r}: {where} is a list; pick an item by number "
            f"(0 to {len(node) - 1})"
        )
    if int(part) >= len(node):
        raise ConfigError(
            f"override {override!r}: {where} has {len(node)} item(s); {part} is out of range"
        )
    return int(part)


def _lookup(tree: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(tree, dict):
            tree = tree.get(part)
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return None
    return tree


def _section_type(annotation: Any) -> Any:
    """Unwrap Annotated and Optional to the model (or container) inside."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _section_type(args[0])
    return annotation


def _allowed_keys(root: type[BaseModel], loc: tuple) -> list[str] | None:
    """The settings a section allows, following a location through lists and `kind` unions."""
    current: Any = root
    for part in loc:
        current = _section_type(current)
        origin = typing.get_origin(current)
        if origin in (list, tuple) and isinstance(part, int):
            current = typing.get_args(current)[0]
            continue
        if origin is dict:
            current = typing.get_args(current)[-1]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [_section_type(a) for a in typing.get_args(current)]
            tagged = [
                m
                for m in members
                if isinstance(m, type)
                and issubclass(m, BaseModel)
                and "kind" in m.model_fields
                and m.model_fields["kind"].default == part
            ]
            if tagged:
                current = tagged[0]
                continue
            return None
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return None
            current = current.model_fields[part].annotation
            continue
        return None
    current = _section_type(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def describe(error: ValidationError, root: type[BaseModel]) -> str:
    """One line per problem, naming the setting; an unknown one with what its section allows."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, tuple(item["loc"][:-1]))
            hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{key}: unknown setting{hint}")
        elif item["type"] == "missing":
            lines.append(f"{key}: required setting is missing")
        else:
            given = json.dumps(item.get("input"), default=str)
            lines.append(f"{key}: {item['msg']} (got {given})")
    return "\n  ".join(lines)


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (a run config, a sweep's grid), with one-line errors
    naming the file: not found, not YAML, not a mapping."""
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return raw
