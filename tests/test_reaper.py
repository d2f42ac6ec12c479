"""Which of a driver's children the reaper takes for Ray's (the kills themselves are checked in
test_interruptions, after SIGINT, SIGTERM and SIGKILL of a real driver)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import ray

from mpsynth.distributed import reaper


@dataclass(eq=False)
class FakeProcess:
    command: list[str]
    title: str = "python"
    kids: list = field(default_factory=list)

    def cmdline(self) -> list[str]:
        return self.command

    def name(self) -> str:
        return self.title

    def children(self, recursive: bool = False) -> list:
        return list(self.kids)


def test_only_processes_run_from_the_ray_package_are_rays():
    package = os.path.dirname(ray.__file__)
    raylet = FakeProcess([f"{package}/core/src/ray/raylet/raylet", "--node_ip_address=127.0.0.1"])
    dashboard = FakeProcess(["/usr/bin/python3", f"{package}/dashboard/dashboard.py"])
    worker = FakeProcess(["ray::IDLE"], title="ray::IDLE")
    # in Ray's container images the home folder is /home/ray: a user's own server lives there
    server = FakeProcess(["/home/ray/anaconda3/bin/python", "/home/ray/app/server.py"])
    driver = FakeProcess(["python", "driver.py"], kids=[raylet, dashboard, worker, server])
    found = reaper._ray_processes(driver)
    assert found == {raylet, dashboard, worker}
