"""Connecting to Ray: an existing cluster (``--address`` or ``RAY_ADDRESS``) or a local one,
and checking that a job's workers fit before anything starts."""

from __future__ import annotations

import os
import sys

from sddarts.platform.compat.ray_local import forget_dead_cluster, grpc_handshake, local_ray_options, recorded_address
from sddarts.trainables.config import CommonConfig
from sddarts.search_spaces.errors import ConfigError


def ray_address(address: str | None = None) -> str | None:
    """``--address``, else ``RAY_ADDRESS``, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None) -> None:
    """An explicit ``--address`` must be ``host:port`` (or ``ray://host:port``) of a live Ray head."""
    if address in (None, "", "local", "auto"):
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"address must be host:port of a Ray head, ray://host:port, 'local' or 'auto' (got {address!r})")
    problem = grpc_handshake(hostport)
    if problem:
        raise ConfigError(f"address {address}: no Ray cluster answers there ({problem}); check the head's GCS port "
                          "(6379 by default; RAY_ADDRESS counts too), start one (ray start --head) or drop --address")


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


def resolve_address(address: str | None) -> str | None:
    """``--address``/``RAY_ADDRESS``; else a running ``ray start`` cluster on this machine (as
    ``ray.init()`` would join); else None, a fresh local Ray. A stale record is forgotten."""
    address = ray_address(address)
    if address:
        return address
    forgotten = forget_dead_cluster()
    if forgotten:
        print(f"sddarts: forgot the stopped Ray cluster recorded at {forgotten}; starting a local Ray",
              file=sys.stderr)
        return None
    running = recorded_address()
    if running:
        print(f"sddarts: joining the running Ray cluster at {running} (--address local starts a fresh one)",
              file=sys.stderr)
    return running


def connect(address: str | None, cfg: CommonConfig, per_trial_extra_cpu: float = 0.0) -> dict[str, float]:
    """Checks the job fits, then starts or joins Ray. Returns the cluster's resources."""
    import ray

    if not ray.is_initialized():
        address = resolve_address(address)
        local = address in (None, "local")
        if local:
            check_fits(cfg, local_resources(), per_trial_extra_cpu)  # before Ray starts
            # a Ray of this process's own: no token (Ray 2.59+ enables one by default and warns);
            # set RAY_AUTH_MODE=token to keep it
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        from sddarts.trainables.workers.trainer import tracking_credentials

        in_job = "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ  # `ray job submit` set the job's env already
        env = tracking_credentials() if not in_job else {}  # for the trials and Train controllers, which log to MLflow too
        options = local_ray_options(env) if local else ({"runtime_env": {"env_vars": env}} if env else {})
        ray.init(address=address or "local", configure_logging=True, logging_level="WARNING", **options)
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    check_fits(cfg, resources, per_trial_extra_cpu)
    return resources
