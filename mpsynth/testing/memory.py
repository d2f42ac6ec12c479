"""Peak memory for benchmarks: the summed PSS of this process and every process it started (Ray's
raylet and workers), sampled in a thread, so pages the object store shares count once."""

from __future__ import annotations

import contextlib
import threading
import time


class MemoryTrace:
    """Samples (time, bytes) every `interval_s` while entered; `peak` over all of them or a window."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def sample() -> int:
        import psutil  # a dev dependency: benchmarks only

        me = psutil.Process()
        total = 0
        for process in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += process.memory_full_info().pss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.sample()))
            self._stop.wait(self.interval_s)

    def peak(self, start: float = 0.0, end: float = float("inf")) -> int:
        return max((m for t, m in self.samples if start <= t <= end), default=0)

    def __enter__(self) -> MemoryTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.time(), self.sample()))
