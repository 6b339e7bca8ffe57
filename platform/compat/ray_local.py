"""Ray 2.60 as sddarts starts and finds it on one machine: the cluster a ``ray start`` recorded
(read through Ray's private ``ray._private.utils``/``ray._common.utils``), a GCS check by the
gRPC handshake (the HTTP/2 client preface: a port that accepts connections is not yet a Ray head),
and the ``ray.init`` options of a local Ray of this process's own."""

from __future__ import annotations

import os
import socket


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


WORKER_SETUP = "sddarts.trainables.workers.ray_compat.worker_setup"  # one line for Ray's transient warnings


# Ray 2.60's Train V2 on one machine: its controller polls the workers every 2 s (each run ends up
# to 2 s after its last epoch; polling a local actor is cheap), and starts a PreemptionWatcher actor
# per run (one more process, and an error-level line about its restarts) for cloud spot nodes.
LOCAL_TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.25", "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}


def local_ray_options(env: dict[str, str] | None = None) -> dict:
    """``ray.init`` options for a local Ray of this process's own: ``env`` for its workers, one line
    for Ray's transient warnings (``trainables/ray_compat.py``), and its own dashboard port, which
    its actors are told of. Ray 2.60: Train V2's PlacementGroupCleaner asks the State API for "the"
    cluster (``get_actor(address=None)``), which fails with a traceback once two local Rays run on
    one machine (two sddarts commands at once)."""
    port = free_port()
    env = {**LOCAL_TRAIN_ENV, **(env or {}), "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}
    env = {k: os.environ.get(k, v) for k, v in env.items()}  # what the user set wins
    return {"dashboard_port": port, "runtime_env": {"env_vars": env, "worker_process_setup_hook": WORKER_SETUP}}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


