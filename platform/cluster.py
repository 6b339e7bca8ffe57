"""Connecting to Ray: an existing cluster (``--address`` or ``RAY_ADDRESS``) or a local one,
and checking that a job's workers fit before anything starts."""

from __future__ import annotations

import os
import socket
import sys

from sddarts.trainables.config import CommonConfig, ConfigError


def ray_address(address: str | None = None) -> str | None:
    """``--address``, else ``RAY_ADDRESS``, else None (start a local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def recorded_address() -> str | None:
    """The address the last ``ray start`` on this machine recorded (``/tmp/ray/ray_current_cluster``)."""
    from ray._private.utils import read_ray_address

    return read_ray_address() or None


def gcs_alive(address: str, timeout: float = 1.0) -> bool:
    """Whether a Ray GCS accepts connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


HANDSHAKE_S = 3.0  # how long an --address gets to answer like a Ray GCS
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def grpc_handshake(address: str, timeout: float = HANDSHAKE_S) -> str | None:
    """None when ``host:port`` answers as a gRPC server does (Ray's GCS and Ray Client both are):
    an HTTP/2 SETTINGS frame in reply to the client preface, within ``timeout`` seconds in all.
    Otherwise what answered, in words."""
    import time

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as conn:
            conn.sendall(_HTTP2_PREFACE)
            reply = b""
            while len(reply) < 9:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(9 - len(reply))
                if not chunk:
                    return "a process accepted the connection and closed it without a reply"
                reply += chunk
    except socket.timeout:
        return f"a process accepts connections there but sent no gRPC reply within {timeout:g} s"
    except (OSError, ValueError) as exc:
        return f"nothing accepts connections there ({type(exc).__name__})"
    if reply[3] != 0x4:  # frame type SETTINGS
        return f"a process answered, but not as a gRPC server (first bytes {reply[:9]!r})"
    return None


def forget_dead_cluster() -> str | None:
    """Removes the record of a ``ray start`` cluster that is no longer running (what ``ray stop``
    does). Ray's State API, which Ray Train's placement-group cleaner polls from inside the
    cluster, resolves its address from that record, so a stale one makes it wait forever on a
    dead GCS and leak the workers' CPUs. Returns the address that was forgotten."""
    from ray._common.utils import reset_ray_address

    address = recorded_address()
    if address and not gcs_alive(address):
        reset_ray_address()
        return address
    return None


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


WORKER_SETUP = "sddarts.trainables.ray_compat.worker_setup"  # one line for Ray's transient warnings


def local_ray_options(env: dict[str, str] | None = None) -> dict:
    """``ray.init`` options for a local Ray of this process's own: ``env`` for its workers, one line
    for Ray's transient warnings (``trainables/ray_compat.py``), and its own dashboard port, which
    its actors are told of. Ray 2.60: Train V2's PlacementGroupCleaner asks the State API for "the"
    cluster (``get_actor(address=None)``), which fails with a traceback once two local Rays run on
    one machine (two sddarts commands at once)."""
    port = free_port()
    env = {**(env or {}), "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}
    return {"dashboard_port": port, "runtime_env": {"env_vars": env, "worker_process_setup_hook": WORKER_SETUP}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        from sddarts.trainables.runtime import tracking_credentials

        in_job = "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ  # `ray job submit` set the job's env already
        env = tracking_credentials() if not in_job else {}  # for the trials and Train controllers, which log to MLflow too
        options = local_ray_options(env) if local else ({"runtime_env": {"env_vars": env}} if env else {})
        ray.init(address=address or "local", configure_logging=True, logging_level="WARNING", **options)
    resources = {k: float(v) for k, v in ray.cluster_resources().items()}
    check_fits(cfg, resources, per_trial_extra_cpu)
    return resources
