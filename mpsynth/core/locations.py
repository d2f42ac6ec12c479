"""Where files live: local paths, or URIs of any filesystem pyarrow knows (`s3://`, `gs://`, ...). A
remote input is downloaded once into `$MPSYNTH_CACHE/inputs/` with the remote file's modification
time, so its fingerprint is the same on every machine."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from mpsynth.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)


SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def is_remote(location: str | Path) -> bool:
    """A URI with a scheme other than file://."""
    found = SCHEME.match(str(location)) if isinstance(location, str) else None
    return found is not None and found.group(1).lower() != "file"


def cache_root() -> Path:
    return Path(os.environ.get("MPSYNTH_CACHE") or Path.home() / ".cache" / "mpsynth")


def filesystem(uri: str, setting: str) -> tuple[pafs.FileSystem, str]:
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, OSError, ValueError) as error:
        raise ConfigError(f"{setting}: {uri} is not a location pyarrow can open: {error}") from None


def download(fs: pafs.FileSystem, path: str, local: Path, mtime_ns: int | None) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    scratch = local.with_name(f".{local.name}.{uuid.uuid4().hex[:8]}.tmp")
    with fs.open_input_stream(path) as source, scratch.open("wb") as target:
        shutil.copyfileobj(source, target, length=8 << 20)
    if mtime_ns is not None:
        os.utime(scratch, ns=(mtime_ns, mtime_ns))
    os.replace(scratch, local)


def local_input(uri: str, setting: str) -> Path:
    """A remote input file as a local file: downloaded once, refreshed when the remote changes."""
    fs, path = filesystem(uri, setting)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise InputError(f"{setting}: {uri} not found")
    name = hashlib.sha256(uri.encode()).hexdigest()[:16]
    local = cache_root() / "inputs" / name / Path(path).name
    if (
        not local.is_file()
        or local.stat().st_size != info.size
        or (info.mtime_ns is not None and local.stat().st_mtime_ns != info.mtime_ns)
    ):
        log.info("downloading %s (%.1f MB)", uri, (info.size or 0) / 1e6)
        download(fs, path, local, info.mtime_ns)
    return local
