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
