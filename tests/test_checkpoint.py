"""Checkpoints read with ``torch.load(weights_only=True)`` only: a search's whole state round-trips,
and a file crafted to run code on unpickling is refused without running it."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sddarts.search_spaces import get_space
from sddarts.search_spaces.errors import CheckpointError
from sddarts.trainables.workers.checkpoint import load_state, save_state
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.sd_darts.seeding import rng_state, set_rng_state
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.step_stats import StepStats


def _state():
    torch.manual_seed(0)
    cfg = SearchConfig(space="s3", C=4, layers=3, vote_count=2, teacher_interval=1, order=2)
    state = SearchState.create(cfg, get_space("s3").supernet(4, 10, 3, 1))
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for epoch in range(2):
        search_step(state, (x, y), (x, y), StepStats())
        state.history.append({"epoch": epoch + 1, "val_acc": np.float64(50.0)})
        state.alpha_history.append(tuple(w.detach().numpy() for w in state.net.op_weights()))
        state.genotypes[epoch + 1] = state.net.derive().to_json(indent=None)
    return cfg, state


def test_a_searchs_whole_state_round_trips_through_weights_only_loading(tmp_path):
    cfg, state = _state()
    np.random.seed(5)
    path = str(tmp_path / "state.pt")
    save_state({"config": cfg.to_dict(), **state.state_dict(), "epoch": 2, "rng": rng_state()}, path)
    expected = (np.random.rand(), torch.rand(1).item())
    saved = load_state(path)  # weights_only=True
    fresh = SearchState.create(cfg, get_space("s3").supernet(4, 10, 3, 1))
    fresh.load_state_dict(saved)
    set_rng_state(saved["rng"])
    assert (np.random.rand(), torch.rand(1).item()) == expected
    for a, b in zip(fresh.net.state_dict().values(), state.net.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert fresh.history == state.history and fresh.genotypes == state.genotypes and len(fresh.ring) == 2
    np.testing.assert_array_equal(fresh.alpha_history[1][0], state.alpha_history[1][0])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "state.pt"
    torch.save({"net": {}, "epoch": 1, "evil": _Payload(marker)}, str(path))
    with pytest.raises(CheckpointError) as info:
        load_state(str(path))
    message = str(info.value)
    assert str(path) in message and "python -m sddarts.trainables.workers.checkpoint" in message and "\n" not in message
    assert not marker.exists()


def test_a_trusted_old_checkpoint_converts_once(tmp_path):
    path = tmp_path / "old.pt"
    with path.open("wb") as fh:  # what sddarts wrote before: numpy RNG state and arrays, pickled
        torch.save({"rng": {"numpy": np.random.get_state()}, "alpha_history": [(np.ones(3),)]}, fh)
    with pytest.raises(CheckpointError):
        load_state(str(path))
    done = subprocess.run([sys.executable, "-m", "sddarts.trainables.workers.checkpoint", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and "converted" in done.stdout
    assert load_state(str(path))["alpha_history"][0][0].tolist() == [1.0, 1.0, 1.0]

