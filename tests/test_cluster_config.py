"""cluster.yaml is a valid Ray cluster launcher config, and what it installs on the nodes exists:
the wheel `make wheel` builds from this checkout, package data included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from mpsynth.config import load_config
from mpsynth.core.errors import ConfigError

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
    assert "mpsynth/orchestration/pipeline.py" in names


def test_the_cluster_run_config_asks_for_what_the_node_types_declare(cluster):
    config = load_config(REPO / "configs" / "cluster_run.yaml")
    nodes = cluster["available_node_types"]
    declared = {name for node in nodes.values() for name in node["resources"]}
    gpu_declared = {
        name
        for node in nodes.values()
        if node["resources"].get("GPU")
        for name in node["resources"]
    }
    for stage in ("embed", "topics", "generate", "evaluate"):
        asked = config.ray.resources_for(stage)
        assert asked and set(asked) <= declared, stage
    assert set(config.ray.resources_for("embed")) <= gpu_declared  # the model stages on GPUs
    assert config.topics.backend == "gpu" and config.embed.gpus_per_actor == 1
    assert set(config.ray.resources_for("generate")).isdisjoint(gpu_declared)  # API calls off them


@pytest.mark.parametrize(
    ("stage_resources", "message"),
    [
        ({"ingest": {"cpu_worker": 1}}, "runs no Ray work"),
        ({"embed": {"GPU": 1}}, "custom resources"),
    ],
)
def test_stage_resources_name_ray_stages_and_custom_resources(stage_resources, message):
    with pytest.raises(ConfigError, match=message):
        load_config(
            REPO / "configs" / "demo.yaml", [f"ray.stage_resources={json.dumps(stage_resources)}"]
        )


CUSTOM_RESOURCES = """
import json
import os
import shutil
import ray
from mpsynth.distributed.tasks import map_tasks, run_remote

def held(item, shared):
    return {"item": item, **ray.get_runtime_context().get_assigned_resources()}

ray.init(num_cpus=2, resources={"cpu_worker": 4}, include_dashboard=False)
results = map_tasks(held, [1, 2], None, 0.5, "check", resources={"cpu_worker": 1})
remote = run_remote(held, 3, None, num_cpus=0.5, resources={"cpu_worker": 2})
print(json.dumps({"results": results, "remote": remote}))
"""


@pytest.mark.ray
def test_stage_work_lands_where_its_custom_resource_is(tmp_path):
    """map_tasks and run_remote ask for the stage's resource: a node that declares it runs them,
    holding it while they run. (A Ray of its own, in a subprocess: the suite's shared session
    declares no custom resource.)"""
    ray_tmp = tempfile.mkdtemp(prefix="mpc", dir="/tmp")  # Ray's socket paths must stay short
    try:
        done = subprocess.run(
            [sys.executable, "-c", CUSTOM_RESOURCES],
            cwd=REPO,
            env={**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["item"] for r in found["results"]] == [1, 2]
    assert all(r["cpu_worker"] == 1 for r in found["results"])
    assert found["remote"]["cpu_worker"] == 2
