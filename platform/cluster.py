"""Connecting to Ray: an existing cluster (``--address`` or ``RAY_ADDRESS``) or a local one,
and checking that a job's workers fit before anything starts."""

from __future__ import annotations

import os

from sddarts.trainables.config import CommonConfig, ConfigError


def ray_address(address: str | None = None) -> str | None:
    """``--address``, else ``RAY_ADDRESS``, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def local_resources() -> dict[str, float]:
    """What a local Ray started here would hold."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def check_fits(cfg: CommonConfig, resources: dict[str, float], per_trial_extra_cpu: float = 0.0) -> None:
    """Raises ConfigError when one job's workers cannot fit in ``resources``."""
    need_cpu = cfg.num_workers * cfg.cpus_per_worker + per_trial_extra_cpu
    if need_cpu > resources.get("CPU", 0) + 1e-9:
        raise ConfigError(f"num_workers x cpus_per_worker = {cfg.num_workers} x {cfg.cpus_per_worker:g} needs "
                          f"{need_cpu:g} CPUs but the Ray cluster has {resources.get('CPU', 0):g}; "
                          "lower --num-workers or --cpus-per-worker")
    need_gpu = cfg.num_workers * cfg.gpus_per_worker
    if need_gpu > resources.get("GPU", 0) + 1e-9:
        raise ConfigError(f"num_workers x gpus_per_worker = {cfg.num_workers} x {cfg.gpus_per_worker:g} needs "
                          f"{need_gpu:g} GPUs but the Ray cluster has {resources.get('GPU', 0):g}; "
                          "lower --gpus-per-worker (0 trains on CPU)")


def connect(address: str | None, cfg: CommonConfig, per_trial_extra_cpu: float = 0.0) -> dict[str, float]:
    """Checks the job fits, then starts or joins Ray. Returns the cluster's resources."""
    import ray

    address = ray_address(address)
    if not address and not ray.is_initialized():
        check_fits(cfg, local_resources(), per_trial_extra_cpu)  # before Ray starts
    if not ray.is_initialized():
        # "local" starts a fresh local Ray instead of joining whatever `ray start` left behind
        ray.init(address=address or "local", configure_logging=True, logging_level="WARNING")
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    check_fits(cfg, resources, per_trial_extra_cpu)
    return resources
