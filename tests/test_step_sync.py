"""The search step never turns a tensor into a Python number: every figure stays on the device
until the epoch ends (on a GPU, each such read would wait for the device)."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sddarts.search_spaces import get_space
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.step_stats import StepStats

READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
         torch.ops.aten.equal.default}


class HostReads(TorchDispatchMode):
    """Records every op that copies a tensor's value to the host (``.item()``, ``float()``,
    ``bool()``), except on the tensors in ``allowed`` (Adam's step counts, which live on the host
    for a GPU model too)."""

    def __init__(self, allowed):
        super().__init__()
        self.allowed = {t.data_ptr() for t in allowed}
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in READS and not (isinstance(args[0], torch.Tensor) and args[0].data_ptr() in self.allowed):
            self.reads.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("order, distill_on, voting", [(1, "both", "soft"), (2, "both", "hard"), (1, "arch", "soft")])
def test_a_search_step_reads_nothing_back_from_the_device(order, distill_on, voting):
    torch.manual_seed(0)
    cfg = SearchConfig(space="s3", C=4, layers=3, order=order, distill_on=distill_on, voting=voting, vote_count=2,
                       teacher_interval=1)
    state = SearchState.create(cfg, get_space("s3").supernet(4, 10, 3, 1))
    batch = (torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)))
    stats = StepStats()
    for _ in range(3):  # teachers in the ring, optimiser state in place
        search_step(state, batch, batch, stats)
    steps = [s["step"] for s in state.a_opt.state.values()]
    with HostReads(steps) as mode:
        search_step(state, batch, batch, stats)
    assert mode.reads == []
    totals = stats.totals()  # the one read per epoch
    assert totals["n"] == 64 and "sd_loss_arch" in totals


@pytest.mark.parametrize("space", ["darts", "s3", "nb201"])
def test_channels_last_computes_the_same_step_as_nchw(space):
    losses = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        net = get_space(space).supernet(4, 10, 5 if space == "nb201" else 3, 1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        state = SearchState.create(SearchConfig(space=space, C=4, layers=3, channels_last=channels_last, vote_count=1,
                                                teacher_interval=1), net.to(memory_format=fmt))
        x, y = torch.randn(16, 1, 8, 8).to(memory_format=fmt), torch.randint(0, 10, (16,))
        stats = StepStats()
        for _ in range(3):
            search_step(state, (x, y), (x, y), stats)
        losses.append([stats.totals()[k] for k in ("ce", "sd_loss", "sd_loss_arch")])
    torch.testing.assert_close(torch.tensor(losses[1]), torch.tensor(losses[0]), rtol=1e-4, atol=1e-5)


def test_bf16_steps_stay_finite_and_close_to_fp32():
    out = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        state = SearchState.create(SearchConfig(space="s3", C=4, layers=3, precision=precision, vote_count=1,
                                                teacher_interval=1, order=2), get_space("s3").supernet(4, 10, 3, 1))
        x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
        stats = StepStats()
        for _ in range(3):
            search_step(state, (x, y), (x, y), stats)
        out[precision] = stats.totals()
    assert all(map(math.isfinite, out["bf16"].values()))
    assert out["bf16"]["ce"] == pytest.approx(out["fp32"]["ce"], rel=0.05)
