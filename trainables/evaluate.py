"""The evaluation stage: train a genotype's discretized network from scratch (DARTS' recipe),
as one Ray Train ``train_loop_per_worker``."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import ray.train
import ray.train.torch
from sddarts.search_spaces import DiscreteNetwork, Genotype
from sddarts.trainables.architect import all_reduce_mean
from sddarts.trainables.config import EvalConfig
from sddarts.trainables.data import INFO, load_dataset
from sddarts.trainables.runtime import (
    STATE_FILE, make_loader, make_trainer, progress, quiet_report_logs, rng_state, seed_everything, set_rng_state,
)
from sddarts.trainables.tracking import RunLogger


def build_network(genotype: Genotype, cfg: EvalConfig) -> DiscreteNetwork:
    info = INFO[cfg.dataset]
    return DiscreteNetwork(genotype, cfg.C, info.num_classes, cfg.layers, info.in_channels,
                           auxiliary=cfg.auxiliary_weight > 0, image_size=info.image_size)


@torch.no_grad()
def test_pass(net: DiscreteNetwork, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(loss, accuracy %) on the test split, summed over all workers."""
    net.eval()
    totals = torch.zeros(3, device=device)
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits, _ = net(x)
        totals += torch.stack([F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum(),
                               torch.tensor(len(y), device=device)])
    all_reduce_mean([totals])
    return float(totals[0] / totals[2]), float(100 * totals[1] / totals[2])


def train_pass(model, net: DiscreteNetwork, loader: DataLoader, opt, cfg: EvalConfig, device) -> tuple[float, float]:
    """One epoch of SGD with the auxiliary loss and gradient clipping; (loss, accuracy %) on this worker."""
    net.train()
    loss_sum = correct = n = 0.0
    for i, (x, y) in enumerate(loader):
        if cfg.steps_per_epoch and i >= cfg.steps_per_epoch:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits, aux = model(x)
        loss = F.cross_entropy(logits, y)
        if aux is not None:
            loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += float((logits.argmax(1) == y).sum())
        n += len(y)
    return loss_sum / max(n, 1), 100 * correct / max(n, 1)


def eval_loop_per_worker(config: dict[str, Any]) -> None:
    """One worker of an evaluation. ``config``: {"eval": EvalConfig dict, "genotype": dict, "run": {...}}."""
    quiet_report_logs()
    cfg = EvalConfig.from_dict(config["eval"])
    genotype = Genotype.from_dict(config["genotype"])
    run = config["run"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    seed_everything(cfg.seed)

    train_ds = load_dataset(cfg.dataset, cfg.data_dir, train=True, cutout=cfg.cutout, download=cfg.download and rank == 0)
    test_ds = load_dataset(cfg.dataset, cfg.data_dir, train=False)
    train_loader = make_loader(train_ds, cfg, rank, world)
    test_loader = make_loader(test_ds, cfg, rank, world, shuffle=False)
    net = build_network(genotype, cfg).to(device)
    model = ray.train.torch.prepare_model(net, move_to_device=False) if world > 1 else net
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.lr_min)

    start_epoch, last = 0, {}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            saved = torch.load(os.path.join(d, STATE_FILE), map_location=device, weights_only=False)
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        start_epoch, last = saved["epoch"], saved["metrics"]
        if rank == 0:
            progress(f"[{run['name']}] resumed after epoch {start_epoch}")
    log = RunLogger(run["tracking_uri"], run["run_id"], enabled=rank == 0)
    if start_epoch == 0:
        log.log_params(cfg.to_dict())
    if start_epoch >= cfg.epochs:
        ray.train.report(last)
        return

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        train_loader.sampler.set_epoch(epoch)
        net.drop_path_prob = cfg.drop_path * epoch / cfg.epochs  # linear ramp
        train_loss, train_acc = train_pass(model, net, train_loader, opt, cfg, device)
        scheduler.step()
        test_loss, test_acc = test_pass(net, test_loader, device)
        metrics = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss,
                   "test_acc": test_acc, "lr": scheduler.get_last_lr()[0], "drop_path": net.drop_path_prob,
                   "epoch_time_s": time.time() - t0}
        if rank == 0:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch")
            progress(f"[{run['name']}] epoch {epoch + 1}/{cfg.epochs} {shown}")
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if rank == 0:
                torch.save({"epoch": epoch + 1, "net": net.state_dict(), "opt": opt.state_dict(),
                            "scheduler": scheduler.state_dict(), "rng": rng_state(), "metrics": metrics,
                            "genotype": genotype.to_dict(), "config": cfg.to_dict()}, os.path.join(d, STATE_FILE))
                ckpt = ray.train.Checkpoint.from_directory(d)
            ray.train.report(metrics, checkpoint=ckpt)
            log.log_metrics(metrics, step=epoch + 1)


def make_eval_trainer(cfg: EvalConfig, genotype: Genotype, run: dict[str, Any], storage_path: str):
    """The evaluation's TorchTrainer; ``run``: {name, tracking_uri, run_id}."""
    return make_trainer(eval_loop_per_worker, {"eval": cfg.to_dict(), "genotype": genotype.to_dict(), "run": run},
                        cfg, run["name"], storage_path)
