"""Held-out figures count each held-out sample once on any number of workers: 1 and 2 gloo
workers measuring the same supernet give the same loss and accuracy."""

import json
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sddarts.search_spaces import get_space
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.data.datasets import DataSource, search_splits
from sddarts.trainables.sd_darts.measure import supernet_accuracy
from sddarts.trainables.data.loaders import MeasureBatches, make_loader


def test_measure_batches_cover_every_sample_once_and_merge_a_short_last_batch():
    for world in (1, 2, 3):
        parts = [MeasureBatches(100, 32, rank, world) for rank in range(world)]
        seen = sorted(i for p in parts for batch in p for i in batch)
        assert seen == list(range(100))
        sizes = sorted(len(b) for p in parts for b in p)
        assert sizes == [32, 32, 36]  # 100 = 32 + 32 + 32 + 4: the 4 join the third batch


def _measure(rank: int, world: int, port: int, out: str) -> None:
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    cfg = SearchConfig(space="s3", C=4, layers=3, batch_size=32)
    net = get_space("s3").supernet(4, 10, 3, 1)
    holdout = search_splits(DataSource("digits"), cfg.train_portion, cfg.holdout_portion, cfg.seed).holdout
    loss, acc = supernet_accuracy(net, make_loader(holdout, cfg, rank, world, shuffle=False), torch.device("cpu"))
    if rank == 0:
        with open(out, "w") as fh:
            json.dump([loss, acc], fh)
    if world > 1:
        dist.destroy_process_group()


def test_one_and_two_workers_measure_the_same_state_alike(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _measure(0, 1, port, str(tmp_path / "one.json"))
    mp.spawn(_measure, args=(2, port, str(tmp_path / "two.json")), nprocs=2, join=True)
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert abs(one[0] - two[0]) < 1e-5 and abs(one[1] - two[1]) < 1e-4, (one, two)
    assert os.path.exists(tmp_path / "two.json")
