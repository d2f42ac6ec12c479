"""The reaper: a small process that outlives the driver of a local Ray session and ends every
process that session started once the driver is gone (a driver killed with SIGKILL cleans nothing
up, and some of Ray's processes, its dashboard and runtime-env agents, stay alive for minutes and
ignore SIGTERM). It watches the driver's process tree while the driver lives, so it knows Ray's
processes after they are re-parented; when told to finish (SIGTERM from a driver that shut Ray
down itself) it ends the ones still alive the same way.

    python -m mpsynth.distributed.reaper DRIVER_PID
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import signal
import sys
import time

import psutil

WATCH_S = 0.5  # how often the driver's process tree is read
GRACE_S = 3.0  # between SIGTERM and SIGKILL
# after the driver died, before its Ray processes are ended: its generation workers stop
# launching at once and write the answers of the requests in flight meanwhile
ORPHAN_GRACE_S = 5.0


def _tree(root: psutil.Process) -> set[psutil.Process]:
    try:
        return set(root.children(recursive=True))
    except psutil.Error:
        return set()


@functools.cache
def _ray_package() -> str:
    """Where the installed ray package lives (found, not imported): every process of Ray's head
    runs a program or script from inside it."""
    spec = importlib.util.find_spec("ray")
    origin = spec.origin if spec is not None else None
    return (
        os.path.dirname(origin) + os.sep if origin else f"{os.sep}site-packages{os.sep}ray{os.sep}"
    )


def _ray_processes(driver: psutil.Process) -> set[psutil.Process]:
    """The driver's children that are Ray's (its head: GCS, raylet, dashboard, monitors; found by
    the installed ray package's folder in their command line, not any `/ray/`: in Ray's own
    container images the home folder is /home/ray), with everything under them (workers, agents).
    Other children of the driver (a test's servers, say) are none of the reaper's business."""
    package = _ray_package()
    found = set()
    try:
        children = driver.children()
    except psutil.Error:
        return found
    for child in children:
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if package in command or child.name().startswith("ray::"):
            found |= {child, *_tree(child)}
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end(processes: set[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL what is left after GRACE_S; the children they have now included."""
    alive = {p for p in processes if p.is_running()}
    for process in list(alive):
        alive |= _tree(process)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, left = psutil.wait_procs(list(alive), timeout=GRACE_S)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()


def reap(driver_pid: int) -> None:
    me = psutil.Process()
    finishing = False

    def finish(signum: int, frame: object) -> None:
        nonlocal finishing
        finishing = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return
    seen: set[psutil.Process] = set()
    while not finishing and _alive(driver):
        seen |= {p for p in _ray_processes(driver) if p.pid != me.pid}
        time.sleep(WATCH_S)
    if not finishing:  # the driver died without shutting Ray down
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while time.monotonic() < deadline and any(p.is_running() for p in seen):
            time.sleep(WATCH_S)
    _end(seen)


if __name__ == "__main__":
    reap(int(sys.argv[1]))
