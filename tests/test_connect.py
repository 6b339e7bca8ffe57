"""Which Ray a command joins: --address, a running `ray start` cluster, or a fresh local one.
A stale record of a stopped cluster is forgotten (it would misdirect Ray's State API)."""

import socket

import pytest

from sddarts.platform.cluster import resolve_address


@pytest.fixture
def ray_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where Ray keeps ray_current_cluster
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "ray").mkdir()
    return tmp_path / "ray" / "ray_current_cluster"


def test_a_stale_record_is_forgotten_and_a_local_ray_starts(ray_tmp, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    ray_tmp.write_text(dead)
    assert resolve_address(None) is None
    assert not ray_tmp.exists()
    assert f"forgot the stopped Ray cluster recorded at {dead}" in capsys.readouterr().err


def test_a_running_cluster_is_joined(ray_tmp, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        live = f"127.0.0.1:{s.getsockname()[1]}"
        ray_tmp.write_text(live)
        assert resolve_address(None) == live
    assert ray_tmp.read_text() == live and "joining the running Ray cluster" in capsys.readouterr().err


def test_an_explicit_address_wins(ray_tmp, monkeypatch):
    ray_tmp.write_text("127.0.0.1:1")
    assert resolve_address("local") == "local"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_address(None) == "10.0.0.1:6379"
    assert ray_tmp.exists()  # an explicit address leaves the record alone


def test_a_silent_listener_is_not_taken_for_a_ray_head_and_the_wait_is_bounded():
    import time

    from sddarts.platform.compat.ray_local import HANDSHAKE_S
    from sddarts.platform.cluster import check_address
    from sddarts.search_spaces.errors import ConfigError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts connections, never answers
        address = f"127.0.0.1:{s.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            check_address(address)
        assert time.monotonic() - started < HANDSHAKE_S + 2
    message = str(info.value)
    assert address in message and "sent no gRPC reply within 3 s" in message and "\n" not in message


@pytest.mark.ray
def test_a_live_ray_gcs_passes_the_handshake(ray_session):
    from sddarts.platform.compat.ray_local import grpc_handshake

    assert grpc_handshake(ray_session) is None
