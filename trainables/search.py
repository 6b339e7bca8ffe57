"""The SD-DARTS search as one Ray Train ``train_loop_per_worker``, and the trainer that runs it.

Reads top to bottom: data, supernet, optimisers, resume, then per epoch the bilevel steps, a
held-out evaluation of the supernet and of its current genotype, logging, and a checkpoint.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import ray.train
import ray.train.torch
from sddarts.search_spaces import Genotype, Supernet, derive_genotype
from sddarts.search_spaces.genotypes import genotype_weights
from sddarts.trainables.architect import all_reduce_mean
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.data import INFO, search_splits
from sddarts.trainables.search_step import SearchState, frozen_bn_stats, search_step
from sddarts.trainables.sharpness import dominant_eigenvalue
from sddarts.trainables.tracking import RunLogger

STATE_FILE = "state.pt"


def make_loader(ds: Dataset, cfg: SearchConfig, rank: int, world: int, shuffle: bool = True) -> DataLoader:
    """A loader over this worker's shard, reshuffled per epoch with the config's seed."""
    sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=shuffle, seed=cfg.seed, drop_last=shuffle)
    return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.loader_workers,
                      drop_last=shuffle, pin_memory=torch.cuda.is_available())


def alpha_entropy(net: Supernet) -> float:
    """Mean entropy (nats) of softmax(alpha) over all edges of both cells."""
    with torch.no_grad():
        p = torch.cat([w for w in net.op_weights()])
        return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


@torch.no_grad()
def evaluate(net: Supernet, loader: DataLoader, device: torch.device, weights=None) -> tuple[float, float]:
    """(loss, accuracy %) of the supernet, or of the op ``weights`` it is given, over all workers."""
    totals = torch.zeros(3, device=device)
    with frozen_bn_stats(net):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = net(x) if weights is None else net(x, weights)
            totals += torch.stack([F.cross_entropy(logits, y, reduction="sum"), (logits.argmax(1) == y).sum(), torch.tensor(len(y), device=device)])
    all_reduce_mean([totals])
    return float(totals[0] / totals[2]), float(100 * totals[1] / totals[2])


def replica_drift(net: Supernet) -> float:
    """Largest difference between any worker's w and alpha and rank 0's (0.0 when in sync)."""
    import torch.distributed as dist

    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, src=0)
    drift = (flat - ref).abs().max()
    dist.all_reduce(drift, op=dist.ReduceOp.MAX)
    return float(drift)


def sharpness(state: SearchState, loader: DataLoader, device: torch.device) -> float:
    """Dominant Hessian eigenvalue of the held-out loss w.r.t. alpha on ``sharpness_batches`` batches."""
    cfg, net = state.cfg, state.net
    batches = [b for _, b in zip(range(cfg.sharpness_batches), loader)]

    def loss() -> torch.Tensor:
        return sum(F.cross_entropy(net(x.to(device)), y.to(device)) for x, y in batches) / len(batches)

    with frozen_bn_stats(net):
        return dominant_eigenvalue(loss, net.alphas(), cfg.sharpness_iters, seed=cfg.seed + state.step)


def save_state(state: SearchState, epoch: int, run_id: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "epoch": epoch, "step": state.step, "mlflow_run_id": run_id, "config": state.cfg.to_dict(), "metrics": metrics,
        "net": state.net.state_dict(), "w_opt": state.w_opt.state_dict(), "a_opt": state.a_opt.state_dict(),
        "scheduler": state.scheduler.state_dict(), "ring": state.ring.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
    }


def load_state(state: SearchState, saved: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """Restores ``state`` in place; returns (epochs done, MLflow run id, last epoch's metrics)."""
    state.net.load_state_dict(saved["net"])
    state.w_opt.load_state_dict(saved["w_opt"])
    state.a_opt.load_state_dict(saved["a_opt"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.ring.load_state_dict(saved["ring"], state.net)
    state.step = saved["step"]
    rng = saved["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return saved["epoch"], saved["mlflow_run_id"], saved["metrics"]


def quiet_report_logs() -> None:
    """Ray Train logs every report (metrics and all) at INFO under a logger named after its file
    path, outside ``ray.train``'s level filter; keep the console to our progress lines."""
    try:
        from ray.train.v2._internal.execution import context as train_context
    except ImportError:
        return
    logging.getLogger(train_context.__file__).setLevel(logging.WARNING)


def progress(line: str) -> None:
    """One progress line on the driver's console (Ray's patched ``print`` would log it twice)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Train worker of a search. ``config``: {"search": SearchConfig dict, "run": {name, tracking_uri, run_id}}."""
    cfg = SearchConfig.from_dict(config["search"])
    run = config["run"]
    quiet_report_logs()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)

    info = INFO[cfg.dataset]
    train_w, train_a = search_splits(cfg.dataset, cfg.data_dir, cfg.train_portion, cfg.seed, cfg.download and rank == 0)
    w_loader, a_loader = make_loader(train_w, cfg, rank, world), make_loader(train_a, cfg, rank, world)
    val_loader = make_loader(train_a, cfg, rank, world, shuffle=False)

    net = Supernet(cfg.C, info.num_classes, cfg.layers, info.in_channels).to(device)
    model = net
    if world > 1:  # DDP averages w's gradients; alpha's are averaged by the alpha step itself
        torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(net, list(net.ALPHA_NAMES))
        model = ray.train.torch.prepare_model(net, move_to_device=False)
    state = SearchState.create(cfg, net, model)

    start_epoch, run_id = 0, run["run_id"]
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            start_epoch, run_id, last = load_state(state, torch.load(os.path.join(d, STATE_FILE), map_location=device, weights_only=False))
    log = RunLogger(run["tracking_uri"], run_id, enabled=rank == 0)
    if start_epoch == 0:
        log.log_params(cfg.to_dict())
    elif rank == 0:
        progress(f"[{run['name']}] resumed after epoch {start_epoch} (step {state.step})")
        if log.logged_steps("epoch") and start_epoch not in log.logged_steps("epoch"):
            log_epoch(log, last, Genotype.from_json(last["genotype_json"]))

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.time()
        w_loader.sampler.set_epoch(epoch)
        a_loader.sampler.set_epoch(epoch)
        totals: dict[str, float] = {}
        sd_n = 0.0
        for i, (bw, ba) in enumerate(zip(w_loader, a_loader)):
            if cfg.steps_per_epoch and i >= cfg.steps_per_epoch:
                break
            bw = tuple(t.to(device, non_blocking=True) for t in bw)
            ba = tuple(t.to(device, non_blocking=True) for t in ba)
            stats = search_step(state, bw, ba)
            sd_n += stats["n"] if "sd_loss" in stats else 0.0
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + (v * stats["n"] if k in ("loss", "sd_loss", "agreement") else v)
        state.scheduler.step()

        genotype = derive_genotype(*net.alphas())
        val_loss, val_acc = evaluate(net, val_loader, device)
        _, derived_acc = evaluate(net, val_loader, device, genotype_weights(genotype, device))
        metrics: dict[str, Any] = {
            "epoch": epoch + 1, "step": state.step,
            "train_loss": totals["loss"] / totals["n"], "train_acc": 100 * totals["correct"] / totals["n"],
            "val_loss": val_loss, "val_acc": val_acc, "derived_val_acc": derived_acc,
            "discretization_gap": val_acc - derived_acc, "alpha_entropy": alpha_entropy(net),
            "teachers": len(state.ring), "lr": state.scheduler.get_last_lr()[0],
        }
        if world > 1:
            metrics["replica_drift"] = replica_drift(net)
        if sd_n:
            metrics["sd_loss"] = totals["sd_loss"] / sd_n
            metrics["agreement"] = totals["agreement"] / sd_n
        if cfg.sharpness_every and ((epoch + 1) % cfg.sharpness_every == 0 or epoch + 1 == cfg.epochs):
            metrics["hessian_eig"] = sharpness(state, val_loader, device)
        metrics["epoch_time_s"] = time.time() - t0
        metrics["genotype"] = genotype.short()
        metrics["genotype_json"] = genotype.to_json(indent=None)

        if rank == 0:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)) and k not in ("epoch", "step"))
            progress(f"[{run['name']}] epoch {epoch + 1}/{cfg.epochs} {shown} genotype={genotype.short()}")
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if rank == 0:
                torch.save(save_state(state, epoch + 1, run_id, metrics), os.path.join(d, STATE_FILE))
                ckpt = ray.train.Checkpoint.from_directory(d)
            ray.train.report(metrics, checkpoint=ckpt)
            # MLflow only hears of an epoch once its checkpoint is reported, so a resumed run
            # never logs an epoch twice; a resume re-logs the checkpointed epoch if it was missed.
            log_epoch(log, metrics, genotype)
            if epoch + 1 == cfg.epochs:
                log.log_dict(genotype.to_dict(), "genotype.json")
                log.log_dict({"alpha_normal": net.alpha_normal.tolist(), "alpha_reduce": net.alpha_reduce.tolist()}, "alpha.json")
                log.log_file(os.path.join(d, STATE_FILE), "checkpoint")


def log_epoch(log: RunLogger, metrics: dict[str, Any], genotype) -> None:
    """One epoch into MLflow: its numeric metrics at step = epoch, and the genotype as a tag."""
    log.log_metrics(metrics, step=int(metrics["epoch"]))
    log.set_tags({"genotype": genotype.short()})


def make_search_trainer(cfg: SearchConfig, run: dict[str, Any], storage_path: str,
                        callbacks: list | None = None) -> "ray.train.torch.TorchTrainer":
    """The one place a search's TorchTrainer is built. The Train run is named after the search,
    so fitting a trainer with the same ``run['name']`` and ``storage_path`` resumes it."""
    from ray.train.torch import TorchTrainer

    resources = {"CPU": cfg.cpus_per_worker}
    if cfg.gpus_per_worker:
        resources["GPU"] = cfg.gpus_per_worker
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"search": cfg.to_dict(), "run": run},
        scaling_config=ray.train.ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.gpus_per_worker > 0,
                                               resources_per_worker=resources),
        run_config=ray.train.RunConfig(
            name=run["name"], storage_path=storage_path, callbacks=callbacks or [],
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
