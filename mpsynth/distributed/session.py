"""Starting (or joining) the Ray session the pipeline runs in."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
import ray.data  # configures its console logging on import: before mpsynth re-routes it

from mpsynth.config import RayConfig
from mpsynth.core import console
from mpsynth.core.errors import StageError

log = logging.getLogger(__name__)


class _Session:
    """The Ray a run uses: joined or started once, on entry or on first need; ended on exit if it
    was this session that started it."""

    def __init__(self, config: RayConfig) -> None:
        self.config = config
        # `ray job submit` sets RAY_ADDRESS; otherwise the config decides. No address means a
        # private local session ("local"), never a silent join of whatever cluster runs here.
        self.address = config.address or os.environ.get("RAY_ADDRESS") or "local"
        self.started = False
        self.ready = False
        self.reaper: subprocess.Popen | None = None

    def require(self) -> None:
        if self.ready:
            return
        if not ray.is_initialized():
            log.info("starting Ray (%s)", self.address)
            console.tame_library_loggers()  # Ray's own console handlers: into the run log instead
            _start(self.config, self.address)
            self.started = True
            self.reaper = _start_reaper() if self.address == "local" else None
        console.tame_library_loggers()
        _raylet_reports_to_log()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # mpsynth shows its own, one per stage
        context.enable_operator_progress_bars = False
        self.ready = True

    def end(self) -> None:
        if self.started:
            ray.shutdown()
        if self.reaper is not None:  # ends what ray.shutdown left behind, then exits
            self.reaper.terminate()


_current: _Session | None = None


@contextmanager
def ray_session(config: RayConfig, lazy: bool = False) -> Iterator[None]:
    """Join the configured cluster (or start a local session); shut down only what we started.
    `lazy`: not before a pass needs it (`require_ray`): a run whose every pass stays in the driver
    (a small input, the offline stand-in) never pays Ray's start."""
    global _current
    # nothing reports home unless the user asks (by setting the variable to 1 themselves)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if _current is not None:  # inside another session (a sweep's, the tests'): it owns Ray
        if not lazy:
            _current.require()
        yield
        return
    session = _current = _Session(config)
    try:
        if not lazy:
            session.require()
        yield
    finally:
        _current = None
        session.end()


def require_ray() -> None:
    """Ray, now: the enclosing session's (started on first need when it is lazy), or whatever
    `ray.init` the caller made itself."""
    if _current is not None:
        _current.require()


def _raylet_reports_to_log() -> None:
    """Ray's driver prints what the raylet reports (a worker that died, one the memory monitor
    killed, with its out-of-memory advice) straight to stdout, log_to_driver or not. mpsynth
    reports failed work itself, so these lines go to the run log as warnings of the `ray` logger
    (to the console too with -v). Ray has no setting for it: its printer is replaced, once."""
    from ray._private import worker as ray_worker

    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "mpsynth", False):
        return
    reports = logging.getLogger("ray.raylet")

    def to_log(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") not in ("raylet", "autoscaler"):
            printer(data, ignore_prefix)
            return
        for line in data.get("lines", []):
            reports.warning("(%s) %s", data["pid"], line)

    to_log.mpsynth = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_log


def _start_reaper() -> subprocess.Popen:
    """A process of its own session (a Ctrl-C or a kill of the driver's group does not reach it)
    that ends this local Ray session's processes once the driver is gone, however it went."""
    return subprocess.Popen(
        [sys.executable, "-m", "mpsynth.distributed.reaper", str(os.getpid())],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _start(config: RayConfig, address: str) -> None:
    """ray.init, tried `ray.start_attempts` times for a local session; a failure is one line that
    says what failed and where Ray's logs are, not Ray's traceback."""
    attempts = config.start_attempts if address == "local" else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(
                address=address,
                num_cpus=config.num_cpus if address == "local" else None,
                include_dashboard=False,
                logging_level=logging.DEBUG if console.verbose() else logging.INFO,
                # worker output stays in Ray's session logs unless -v
                log_to_driver=console.verbose(),
            )
            return
        except Exception as error:  # Ray raises bare Exception, RuntimeError, ConnectionError ...
            ray.shutdown()  # whatever the failed start left running
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            if attempt < attempts:
                log.warning("Ray did not start (%s); trying again", reason)
                continue
            logs = Path(os.environ.get("RAY_TMPDIR") or "/tmp/ray") / "session_latest" / "logs"
            hint = (
                "raise ray.start_attempts, or start Ray yourself (ray start --head) and set "
                "ray.address"
                if address == "local"
                else "check that the cluster at ray.address is up and reachable"
            )
            raise StageError(
                f"Ray ({address}) did not start after {attempts} attempt(s): {reason}. Ray's "
                f"logs: {logs}. On a loaded machine {hint}"
            ) from None


def actor_layout(
    actors: int | None, gpus_per_actor: float | None, wants_gpu: bool
) -> tuple[int, float]:
    """(actors, GPUs per actor) for a model stage: one actor per GPU when the cluster has GPUs and
    the backend can use them, else one per CPU (each asking only a fraction of a CPU)."""
    resources = _cluster_resources(wants_gpu)
    gpus = resources.get("GPU", 0.0)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if wants_gpu and gpus >= 1 else 0.0
    if actors is None:
        actors = int(gpus // gpus_per_actor) if gpus_per_actor else int(resources.get("CPU", 1))
    return max(1, actors), gpus_per_actor


def _cluster_resources(wants_gpu: bool) -> dict[str, float]:
    """The cluster's CPUs and GPUs. A local session that has not started Ray yet is not started
    to answer: this machine's, as Ray would count them (its CPUs or `ray.num_cpus`; the CUDA
    devices torch sees, asked only when a GPU is wanted)."""
    session = _current
    if session is not None and not session.ready and session.address == "local":
        gpus = 0
        if wants_gpu:
            import torch

            gpus = torch.cuda.device_count()
        return {"CPU": float(session.config.num_cpus or os.cpu_count() or 1), "GPU": float(gpus)}
    require_ray()
    return ray.cluster_resources()
