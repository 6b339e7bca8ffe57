"""The evaluation stage: train a genotype's discretized network from scratch (DARTS' recipe),
as one Ray Train ``train_loop_per_worker``. With ``holdout_portion > 0`` it is a sweep's proxy
retrain: it trains on the search's w- and alpha-data and measures on the search's held-out split.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import ray.train.torch
from sddarts.search_spaces import genotype_from_dict, get_space
from sddarts.trainables.config import EvalConfig
from sddarts.trainables.data.datasets import DataSource, dataset_info, source_record, train_and_measure_splits
from sddarts.trainables.workers.worker import Worker
from sddarts.trainables.workers.fatal import reporting_fatal
from sddarts.trainables.sd_darts.measure import loss_and_accuracy
from sddarts.trainables.sd_darts.precision import autocast
from sddarts.trainables.data.loaders import device_augment, make_loader, to_device
from sddarts.trainables.workers.trainer import make_trainer
from sddarts.trainables.sd_darts.step_stats import StepStats


def build_network(genotype, cfg: EvalConfig, info=None) -> torch.nn.Module:
    """The network ``genotype`` builds in its own space (``forward`` gives (logits, aux or None)) for
    the dataset ``info`` describes (default: the config's)."""
    info = info or dataset_info(DataSource.of(cfg))
    return get_space(genotype.space).network(genotype, cfg.C, info.num_classes, cfg.layers, info.in_channels,
                                             cfg.auxiliary_weight > 0, info.image_size)


def measured_split(cfg: EvalConfig) -> str:
    """The prefix of the figures an evaluation reports: ``test`` on the test split, ``val`` on
    the held-out part of the training split."""
    return "val" if cfg.holdout_portion > 0 else "test"


@reporting_fatal
def eval_loop_per_worker(config: dict[str, Any]) -> None:
    """One worker of an evaluation. ``config``: {"eval": EvalConfig dict, "genotype": dict, "run": {...}}."""
    cfg = EvalConfig.from_dict(config["eval"])
    genotype = genotype_from_dict(config["genotype"])
    worker = Worker.start(config["run"], cfg.seed)
    train_ds, measure_ds = train_and_measure_splits(DataSource.of(cfg), cfg.holdout_portion, cfg.seed,
                                                    cfg.cutout, cfg.download and worker.rank == 0,
                                                    crop_flip=not cfg.augment_on_device)
    train_loader = make_loader(train_ds, cfg, worker.rank, worker.world)
    measure_loader = make_loader(measure_ds, cfg, worker.rank, worker.world, shuffle=False)
    net = build_network(genotype, cfg).to(worker.device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    model = ray.train.torch.prepare_model(net, move_to_device=False) if worker.world > 1 else net
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.lr_min)

    def load(saved: dict[str, Any]) -> None:
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        scheduler.load_state_dict(saved["scheduler"])

    split = measured_split(cfg)
    start = worker.resume(load, cfg.to_dict(), {"dataset.json": source_record(DataSource.of(cfg))})
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        train_loader.sampler.set_epoch(epoch)
        net.drop_path_prob = cfg.drop_path * epoch / cfg.epochs  # linear ramp
        hook = worker.step_hook(epoch + 1, cfg.epochs, cfg.batch_size)
        train_loss, train_acc = train_pass(model, net, train_loader, opt, cfg, worker.device, hook)
        scheduler.step()
        net.eval()
        loss, acc = loss_and_accuracy(lambda x: net(x)[0], measure_loader, worker.device)
        metrics = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, f"{split}_loss": loss,
                   f"{split}_acc": acc, "lr": scheduler.get_last_lr()[0], "drop_path": net.drop_path_prob,
                   "epoch_time_s": time.time() - t0}
        worker.record(epoch + 1, cfg.epochs, metrics, {"net": net.state_dict(), "opt": opt.state_dict(),
                      "scheduler": scheduler.state_dict(), "genotype": genotype.to_dict(), "config": cfg.to_dict()})
    worker.finish()


def train_pass(model, net: torch.nn.Module, loader: DataLoader, opt, cfg: EvalConfig, device,
               on_step: Callable[[int, int], None] | None = None) -> tuple[float, float]:
    """One epoch of SGD with the auxiliary loss and gradient clipping; (loss, accuracy %) over all
    workers, read from the device once. ``on_step(done, steps)`` after each step."""
    net.train()
    stats, augment = StepStats(), device_augment(cfg, device)
    steps = min(len(loader), cfg.steps_per_epoch or len(loader))
    for i, batch in enumerate(loader):
        if i >= steps:
            break
        x, y = to_device(batch, device, cfg.channels_last, augment)
        with autocast(cfg, device):
            logits, aux = model(x)
        logits = logits.float()
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        stats.add_batch(loss, logits, y)
        if on_step is not None:
            on_step(i + 1, steps)
    totals = stats.totals(device)
    return stats.mean(totals, "loss"), 100 * stats.mean(totals, "correct")


def make_eval_trainer(cfg: EvalConfig, genotype, run: dict[str, Any], storage_path: str,
                      placement_group_cleaner: bool = True):
    """The evaluation's TorchTrainer; ``run``: {name, tracking_uri, run_id}."""
    return make_trainer(eval_loop_per_worker, {"eval": cfg.to_dict(), "genotype": genotype.to_dict(), "run": run},
                        cfg, run["name"], storage_path, placement_group_cleaner=placement_group_cleaner)
