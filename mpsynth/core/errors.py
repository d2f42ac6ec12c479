"""The error hierarchy: every failure a user can cause names the file, row or setting at fault."""

from __future__ import annotations


class MpsynthError(Exception):
    """Base class for errors mpsynth reports to the user (the CLI prints them without a traceback)."""


class ConfigError(MpsynthError):
    """The run config (or a --set override) is invalid."""


class InputError(MpsynthError):
    """An input file is missing, unreadable, or lacks a required column."""


class StageError(MpsynthError):
    """A stage cannot run, for example because an upstream output is missing."""


class ProviderError(MpsynthError):
    """A remote backend (embeddings or generation) failed in a way that retrying cannot fix."""


class MissingDependencyError(MpsynthError):
    """An optional dependency or device is missing; the message says how to get it."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what}: {install}")
