"""Folders the `datasets` library wrote, as ingest inputs: saved with `save_to_disk` (Arrow streams
listed in `state.json`), or laid out as on the Hugging Face Hub (a README whose YAML header, the
dataset card's, names each config's data files and the licence)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from mpsynth.core.errors import InputError


def card_header(folder: Path) -> dict[str, Any] | None:
    """The YAML header of a dataset folder's card (README.md), or None where it has none."""
    card = Path(folder) / "README.md"
    if not card.is_file():
        return None
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    header = yaml.safe_load(text.split("---", 2)[1])
    return header if isinstance(header, dict) else None


def dataset_files(folder: Path, config: str | None) -> list[Path] | None:
    """The data files of a folder `datasets` wrote: saved with `save_to_disk` (a dataset, or each
    split of a dataset dict, as Arrow streams) or laid out as on the Hub (a README whose YAML
    header lists `configs` and their data files: `config` picks one); None for any other folder."""
    if (folder / "dataset_dict.json").is_file():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        return [f for split in splits for f in _saved_files(folder / split)]
    if (folder / "state.json").is_file():
        return _saved_files(folder)
    configs = {c["config_name"]: c for c in (card_header(folder) or {}).get("configs", [])}
    if not configs:
        return None
    if config is None:
        defaults = [n for n, c in configs.items() if c.get("default")]
        if len(configs) > 1 and len(defaults) != 1:
            raise InputError(
                f"{folder} is a dataset with configs {', '.join(configs)}: name one with "
                "ingest.inputs[].dataset_config"
            )
        config = defaults[0] if defaults else next(iter(configs))
    if config not in configs:
        raise InputError(
            f"{folder}: no dataset config {config!r}; its configs are {', '.join(configs)}"
        )
    data_files = configs[config].get("data_files", [])
    if isinstance(data_files, str | dict):
        data_files = [data_files]
    patterns = [
        p for entry in data_files
        for p in ([entry] if isinstance(entry, str) else _as_list(entry["path"]))
    ]  # fmt: skip
    return sorted({f for pattern in patterns for f in folder.glob(pattern) if f.is_file()})


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _saved_files(folder: Path) -> list[Path]:
    state = json.loads((folder / "state.json").read_text())
    return [folder / entry["filename"] for entry in state["_data_files"]]
