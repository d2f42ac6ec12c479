"""cluster.yaml is a valid Ray cluster launcher config, and what it installs on the nodes exists:
the wheel `make wheel` builds from this checkout, package data included."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    return yaml.safe_load((REPO / "cluster.yaml").read_text())


def test_cluster_yaml_follows_the_schema_ray_ships(cluster):
    schema = json.loads(resources.files("ray.autoscaler").joinpath("ray-schema.json").read_text())
    jsonschema.validate(cluster, schema)  # raises with the path of the first violation


def test_node_types_split_the_work(cluster):
    nodes = cluster["available_node_types"]
    assert nodes[cluster["head_node_type"]]["resources"] == {"CPU": 0}  # the driver only
    gpu = [n for n in nodes.values() if n["resources"].get("GPU")]
    cpu = [n for n in nodes.values() if n["resources"].get("CPU") and not n["resources"].get("GPU")]
    assert gpu and cpu
    for node in [*gpu, *cpu]:
        assert node["min_workers"] <= node["max_workers"] <= cluster["max_workers"]
    commands = " ".join(cluster["head_start_ray_commands"] + cluster["worker_start_ray_commands"])
    assert commands.count("--disable-usage-stats") == 2


def test_nodes_install_the_wheel_built_from_this_checkout(cluster, tmp_path):
    mounts = cluster["file_mounts"]
    ((remote, local),) = mounts.items()
    assert local == "./dist" and any(remote in c for c in cluster["setup_commands"])
    assert not any("git+" in c for c in cluster["setup_commands"])
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mpsynth-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mpsynth/metrics/tlds.txt" in names and "mpsynth/templates/mptm.txt" in names
    assert "mpsynth/pipeline.py" in names
