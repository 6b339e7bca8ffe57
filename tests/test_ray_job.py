"""The KubeRay RayJob manifest: a sweep on a GPU worker group, shared storage, MLflow on the head,
an entrypoint the CLI parses and the Makefile's pins."""

import re
import shlex
from pathlib import Path

import yaml

from sddarts.platform.commands.cli import COMMANDS
from sddarts.platform.commands.parser import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _docs():
    job, pvc = yaml.safe_load_all((ROOT / "ray_job.yaml").read_text())
    return job, pvc


def _makefile_pins() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"^PINS := (.*?)\n(?=\n)", text, re.S | re.M).group(1)
    return {name.lower(): version for name, version in re.findall(r'"?([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9.]+)', block)}


def _entrypoint(job) -> list[str]:
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "sddarts"
    return argv[1:]


def test_it_is_a_rayjob_that_shuts_down_and_parses_with_the_cli():
    job, pvc = _docs()
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["shutdownAfterJobFinishes"] is True
    args = build_parser().parse_args(_entrypoint(job))
    assert args.command == "sweep" and COMMANDS[args.command].__name__ == "cmd_sweep"
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]


def test_gpu_group_and_shared_storage_on_every_pod():
    job, pvc = _docs()
    cluster = job["spec"]["rayClusterSpec"]
    (gpu,) = [g for g in cluster["workerGroupSpecs"] if g["groupName"] == "gpu"]
    worker = gpu["template"]["spec"]
    assert int(worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert any(t["key"] == "nvidia.com/gpu" for t in worker["tolerations"])
    argv = _entrypoint(job)
    storage = argv[argv.index("--storage-path") + 1]
    assert float(argv[argv.index("--gpus-per-worker") + 1]) >= 1
    for spec in (cluster["headGroupSpec"]["template"]["spec"], worker):
        (volume,) = spec["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        (mount,) = spec["containers"][0]["volumeMounts"]
        assert mount["name"] == volume["name"] and storage.startswith(mount["mountPath"] + "/")


def test_head_serves_mlflow_with_basic_auth_at_the_entrypoints_tracking_uri():
    job, _ = _docs()
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    start = " ".join(head["lifecycle"]["postStart"]["exec"]["command"])
    assert "mlflow server --app-name basic-auth" in start and "--port 5000" in start
    assert "default_permission = READ" in start and "--serve-artifacts" in start
    env = {e["name"]: e for e in head["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=\"$MLFLOW_TRACKING_PASSWORD\"" in start  # one secret, server and clients
    argv = _entrypoint(job)
    assert argv[argv.index("--tracking-uri") + 1] == "http://$POD_IP:5000"
    assert {"containerPort": 5000, "name": "mlflow"} in head["ports"]


def test_pins_equal_the_makefiles():
    job, _ = _docs()
    pins = _makefile_pins()
    env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    listed = {}
    for req in env["pip"]["packages"]:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([0-9.]+)", req)
        if m:
            listed[m.group(1).lower()] = m.group(2)
    ray = pins.pop("ray")
    assert listed == pins  # every pinned package but Ray, which the image's tag pins
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == ray
    images = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]]
    images += [g["template"]["spec"]["containers"][0]["image"] for g in cluster["workerGroupSpecs"]]
    assert all(image.startswith(f"rayproject/ray:{ray}-") for image in images)
