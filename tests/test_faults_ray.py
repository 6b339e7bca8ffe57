"""Faults a workstation meets: a storage path that fills up while a checkpoint is written. (Two
commands at once on one machine, a killed worker, Ctrl-C and bad checkpoints: test_recovery_ray.py.)"""

import json
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sddarts.platform.commands.cli import main
from sddarts.trainables.workers.checkpoint import load_state

pytestmark = pytest.mark.ray

TINY = ["--dataset", "digits", "--C", "4", "--layers", "3", "--batch-size", "32", "--steps-per-epoch", "3",
        "--num-workers", "1", "--cpus-per-worker", "0.5", "--vote-count", "2", "--teacher-interval", "1"]


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mounts a tmpfs of ``size`` at ``path``; the reason it could not, or None."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def _alpha(client: MlflowClient, run_id: str, tmp_path: Path) -> dict:
    record = json.loads(Path(client.download_artifacts(run_id, "alpha.json", str(tmp_path))).read_text())
    return {k: v for k, v in record.items() if k.startswith("alpha_")}


def test_a_full_disk_fails_in_one_line_keeps_the_last_checkpoint_and_resumes_exactly(ray_session, tmp_path,
                                                                                    sqlite_uri, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    why = _mount_tmpfs(disk, "4m")  # two checkpoints of this search (1.5 MB each) fit, the third does not
    if why:
        pytest.skip(f"mounting a small tmpfs needs root with CAP_SYS_ADMIN: {why}")
    try:
        args = [*TINY, "--epochs", "3", "--max-failures", "0", "--tracking-uri", sqlite_uri]
        rc = main(["search", *args, "--name", "full", "--storage-path", str(disk)])
        text = capsys.readouterr().err
        err = [line for line in text.splitlines() if line.startswith("sddarts: error:")]
        assert rc == 1 and len(err) == 1 and "Traceback" not in text, text  # (Ray's own log lines may pass by)
        assert "no space left on the storage path while saving epoch 3's checkpoint" in err[0]
        assert "--resume full" in err[0]
        client = MlflowClient(sqlite_uri)
        (run,) = client.search_runs(["1"], filter_string="attributes.run_name = 'full'")
        assert run.info.status == "FAILED"
        states = []
        for folder in sorted((disk / "full").glob("checkpoint_*")):
            try:
                states.append(load_state(str(folder / "state.pt"))["epoch"])
            except Exception:  # the checkpoint the disk could not hold
                states.append(None)
        assert states[:2] == [1, 2] and all(s is None for s in states[2:])  # the previous one still loads
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # space freed
        assert main(["search", *args, "--resume", "full", "--storage-path", str(disk)]) == 0
        assert main(["search", *args, "--name", "whole", "--storage-path", str(tmp_path / "runs")]) == 0
        (resumed,) = client.search_runs(["1"], filter_string="attributes.run_name = 'full'")
        (whole,) = client.search_runs(["1"], filter_string="attributes.run_name = 'whole'")
        steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "val_acc")]
        assert resumed.info.status == "FINISHED" and sorted(set(steps)) == [1, 2, 3]
        assert _alpha(client, resumed.info.run_id, tmp_path / "r") == _alpha(client, whole.info.run_id, tmp_path / "w")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
