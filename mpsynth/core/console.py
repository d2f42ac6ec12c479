"""The console is for people: mpsynth's own lines and one live progress display per long stage.
Everything else (Ray, Ray Data, BERTopic, Python warnings) goes to `mpsynth.log` in the run
directory, and to the console as well only with `-v`."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOG_FILE = "mpsynth.log"
_OWN = "mpsynth"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# how often progress is printed when stdout is not a terminal: by the clock, whether or not the
# work has reported since (a model loading, a long batch, a fit that reports nothing)
PLAIN_PROGRESS_INTERVAL_S = 8.0


class _RunLog(logging.Handler):
    """The run's log file; records that arrive before the run directory is known are held and
    written when it is."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(_FORMAT))
        self.held: list[logging.LogRecord] = []
        self.file: logging.FileHandler | None = None

    def open(self, path: Path) -> None:
        if self.file is not None and Path(self.file.baseFilename) == path.resolve():
            return
        self.close_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = logging.FileHandler(path, encoding="utf-8")
        self.file.setFormatter(self.formatter)
        for record in self.held:
            self.file.handle(record)
        self.held.clear()

    def close_file(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.file is not None:
            self.file.handle(record)
        elif len(self.held) < 10_000:
            self.held.append(record)


class _OwnLines(logging.Formatter):
    """`12:04:31 message`; warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{stamp} {level}{record.getMessage()}"


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a live progress display wraps it)."""

    _mpsynth = True

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_run_log = _RunLog()
_verbose = False
_configured = False
_native_redirected = False  # fd 2 already points at a run log


def setup(verbose: bool = False) -> None:
    """Route logging: mpsynth's lines to the console, everything to the run log (and with
    `verbose`, everything to the console too)."""
    global _verbose, _configured
    _verbose, _configured = verbose, True
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not getattr(h, "_mpsynth", False)]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    _run_log._mpsynth = True  # type: ignore[attr-defined]
    # libraries' debug records (Ray Data dumps its whole context at DEBUG) only with -v
    _run_log.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.addHandler(_run_log)
    console = _Stderr()
    console.setFormatter(_OwnLines() if not verbose else logging.Formatter(_FORMAT))
    if not verbose:
        console.addFilter(lambda record: record.name.split(".")[0] == _OWN)
    root.addHandler(console)
    logging.captureWarnings(True)  # warnings.warn from libraries: into the log, not the console
    tame_library_loggers()


def open_run_log(run_dir: Path) -> Path:
    """Start writing the log into the run directory (with what was logged before it existed)."""
    path = Path(run_dir) / LOG_FILE
    _run_log.open(path)
    return path


def close_run_log() -> None:
    _run_log.close_file()


def tame_library_loggers() -> None:
    """Libraries that print through handlers of their own (Ray's, BERTopic's) are sent through the
    root logger instead, so their lines reach the run log and not the console."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.split(".")[0] == _OWN:
            continue
        consoles = [
            h
            for h in logger.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        ]
        if consoles or not logger.propagate:
            for handler in consoles:
                logger.removeHandler(handler)
            logger.propagate = True


def verbose() -> bool:
    return _verbose


@contextmanager
def native_output_to_run_log() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 (Ray's C++ core, its child processes)
    into the run log, while Python's sys.stderr keeps the terminal. Only in a configured console
    (the CLI) with a run log open and without -v; elsewhere it changes nothing."""
    global _native_redirected
    if not _configured or _verbose or _run_log.file is None or _native_redirected:
        yield  # already redirected (a sweep around its variations' runs): leave it as it is
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    log_fd = os.open(_run_log.file.baseFilename, os.O_WRONLY | os.O_APPEND)
    _native_redirected = True
    try:
        os.dup2(log_fd, 2)
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
            os.dup2(saved, 2)
    finally:
        _native_redirected = False
        os.close(saved)
        os.close(log_fd)


def interactive() -> bool:
    return sys.stdout.isatty()


class Progress:
    """One stage's progress: done of total, rate, ETA, and any extra fields (spend, failures).
    A live bar on a terminal (rich); otherwise a plain line every `interval_s`, from a timer
    thread, so that the console moves even while the work is silent (work without a count says
    how long it has run)."""

    def __init__(
        self,
        description: str,
        total: int | None,
        unit: str,
        interval_s: float = PLAIN_PROGRESS_INTERVAL_S,
    ) -> None:
        self.interval_s = interval_s
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self.fields: dict[str, Any] = {}
        self.started = time.monotonic()
        self._printed_at = self.started
        self._bar = None
        self._task = None
        self._printed_done: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if interactive():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            if self.total is None:  # work without a count (a model fit): a spinner and the time
                columns = (
                    SpinnerColumn(),
                    TextColumn("[bold]{task.description}"),
                    TimeElapsedColumn(),
                )
            else:
                columns = (
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"),
                    TextColumn("ETA"),
                    TimeRemainingColumn(),
                    TimeElapsedColumn(),
                    TextColumn("{task.fields[extra]}"),
                )
            self._bar = RichProgress(
                *columns,
                console=Console(file=sys.stdout),
                transient=False,
                refresh_per_second=4,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, rate="", extra="")
        else:
            self._timer = threading.Thread(target=self._tick, name="mpsynth-progress", daemon=True)
            self._timer.start()
        return self

    def _tick(self) -> None:
        while not self._stopped.wait(min(1.0, self.interval_s)):
            if time.monotonic() - self._printed_at >= self.interval_s:
                self._print_line()

    def update(self, done: int | None = None, advance: int = 0, **fields: Any) -> None:
        self.done = done if done is not None else self.done + advance
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(
                self._task, completed=self.done, rate=self._rate_text(), extra=self._extra()
            )

    def _rate(self) -> float:
        return self.done / max(1e-9, time.monotonic() - self.started)

    def _rate_text(self) -> str:
        rate = self._rate()
        if 0 < rate < 1:  # slow work (a comparison a minute) reads per minute, not as 0.0/s
            return f"{rate * 60:,.1f} {self.unit}/min"
        return f"{rate:,.1f} {self.unit}/s"

    def _extra(self) -> str:
        return "  ".join(f"{k} {v}" for k, v in self.fields.items())

    def _print_line(self) -> None:
        with self._lock:
            self._printed_at = time.monotonic()
            if self.total is None and not self.done:  # work without a count (a model fit)
                logging.getLogger("mpsynth.progress").info(
                    "%s: running for %.0fs", self.description, self._printed_at - self.started
                )
                return
            if self._printed_done == self.done and self.done == self.total:
                return
            self._print_counts()

    def _print_counts(self) -> None:
        self._printed_done = self.done
        rate = self._rate()
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else None
            where = f"{self.done:,}/{self.total:,} ({100 * self.done / self.total:.0f}%)"
            eta_text = f" ETA {eta:.0f}s" if eta is not None else ""
        else:
            where, eta_text = f"{self.done:,}", ""
        extra = f" {self._extra()}" if self.fields else ""
        logging.getLogger("mpsynth.progress").info(
            "%s: %s %s%s%s", self.description, where, self._rate_text(), eta_text, extra
        )

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.join()
        if self._bar is not None:
            self._bar.stop()
        elif (
            exc[0] is None
            and self.total is not None
            and time.monotonic() - self.started >= self.interval_s
        ):
            self._print_line()  # the final count of a long stage


@contextmanager
def progress(
    description: str,
    total: int | None,
    unit: str = "rows",
    interval_s: float = PLAIN_PROGRESS_INTERVAL_S,
) -> Iterator[Progress]:
    with Progress(description, total, unit, interval_s) as bar:
        yield bar
