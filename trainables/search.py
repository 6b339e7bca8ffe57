"""The SD-DARTS search as one Ray Train ``train_loop_per_worker``, and the trainer that runs it.

Reads top to bottom: data, supernet, optimisers, resume, then per epoch the bilevel steps, a
held-out evaluation of the supernet and of its current genotype, logging, and a checkpoint.
"""

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
from sddarts.search_spaces import Genotype, Supernet, derive_genotype
from sddarts.search_spaces.genotypes import genotype_weights
from sddarts.trainables.architect import all_reduce_mean
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.data import INFO, search_splits
from sddarts.trainables.runtime import (
    STATE_FILE, make_loader, make_trainer, progress, quiet_report_logs, rng_state, seed_everything, set_rng_state,
)
from sddarts.trainables.search_step import SearchState, frozen_bn_stats, search_step
from sddarts.trainables.sharpness import dominant_eigenvalue
from sddarts.trainables.tracking import RunLogger


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


def worker_nodes(world: int) -> int:
    """How many Ray nodes this run's workers span."""
    if world == 1:
        return 1
    import torch.distributed as dist

    nodes: list = [None] * world
    dist.all_gather_object(nodes, ray.get_runtime_context().get_node_id())
    return len(set(nodes))


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
        "rng": rng_state(), "history": state.history, "alpha_history": state.alpha_history,
    }


def load_state(state: SearchState, saved: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    """Restores ``state`` in place; returns (epochs done, MLflow run id, last epoch's metrics)."""
    state.net.load_state_dict(saved["net"])
    state.w_opt.load_state_dict(saved["w_opt"])
    state.a_opt.load_state_dict(saved["a_opt"])
    state.scheduler.load_state_dict(saved["scheduler"])
    state.ring.load_state_dict(saved["ring"], state.net)
    state.step = saved["step"]
    set_rng_state(saved["rng"])
    state.history[:] = saved["history"]
    state.alpha_history[:] = saved["alpha_history"]
    return saved["epoch"], saved["mlflow_run_id"], saved["metrics"]


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Train worker of a search. ``config``: {"search": SearchConfig dict, "run": {name, tracking_uri, run_id}}."""
    cfg = SearchConfig.from_dict(config["search"])
    run = config["run"]
    quiet_report_logs()
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    seed_everything(cfg.seed)

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

    start_epoch, run_id, last = 0, run["run_id"], {}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            start_epoch, run_id, last = load_state(state, torch.load(os.path.join(d, STATE_FILE), map_location=device, weights_only=False))
    log = RunLogger(run["tracking_uri"], run_id, enabled=rank == 0)
    nodes = worker_nodes(world)
    log.set_tags({"train_workers": world, "train_nodes": nodes, "device": str(device)})
    if rank == 0:
        progress(f"[{run['name']}] {world} worker(s) on {nodes} node(s), device {device}")
    if start_epoch == 0:
        log.log_params(cfg.to_dict())
    elif rank == 0:
        progress(f"[{run['name']}] resumed after epoch {start_epoch} (step {state.step})")
        if start_epoch not in log.logged_steps("epoch"):
            log_epoch(log, last, Genotype.from_json(last["genotype_json"]))

    history, alpha_history = state.history, state.alpha_history  # per-epoch, kept in checkpoints
    logged = log.logged_steps("epoch") if start_epoch else set()
    if start_epoch >= cfg.epochs:  # restored after its last epoch: report the final result again
        ray.train.report({k: v for k, v in last.items()})
        return
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
        metrics["mlflow_run_id"] = run_id
        history.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        alpha_history.append(tuple(w.detach().cpu().numpy() for w in net.op_weights()))

        if rank == 0:
            shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)) and k not in ("epoch", "step"))
            progress(f"[{run['name']}] epoch {epoch + 1}/{cfg.epochs} {shown} genotype={genotype.short()}")
        with tempfile.TemporaryDirectory() as d:
            ckpt = None
            if rank == 0:
                torch.save(save_state(state, epoch + 1, run_id, metrics), os.path.join(d, STATE_FILE))
                ckpt = ray.train.Checkpoint.from_directory(d)
            ray.train.report(metrics, checkpoint=ckpt)
            # An epoch reaches MLflow after its checkpoint is reported. An interrupted run can
            # still have logged an epoch its last checkpoint lacks; the resumed run replays it
            # from the same RNG state and does not log it again.
            if epoch + 1 not in logged:
                log_epoch(log, metrics, genotype)
            final = epoch + 1 == cfg.epochs
            if final or (cfg.plot_every and (epoch + 1) % cfg.plot_every == 0):
                log_pictures(log, genotype, net, history, alpha_history, epoch + 1, final)
            if final:
                log.log_dict({"alpha_normal": net.alpha_normal.tolist(), "alpha_reduce": net.alpha_reduce.tolist()}, "alpha.json")
                log.log_file(os.path.join(d, STATE_FILE), "checkpoint")


def log_pictures(log: RunLogger, genotype, net: Supernet, history: list[dict], alpha_history: list, epoch: int,
                 final: bool) -> None:
    """Cell diagrams (PNG and SVG) per ``plot_every`` epochs and at the end; at the end also the
    alpha heatmap, its evolution, and the curves of sharpness, gap and losses."""
    if not log.enabled:
        return
    import matplotlib.pyplot as plt

    from sddarts.search_spaces import plot

    folder = "plots" if final else f"plots/epoch_{epoch:03d}"
    for cell in ("normal", "reduce"):
        fig = plot.cell_figure(genotype, cell)
        log.log_figure(fig, f"{folder}/cell_{cell}.png")
        log.log_figure(fig, f"{folder}/cell_{cell}.svg")
    if final:
        log.log_figure(plot.alpha_heatmap(net.alpha_normal, net.alpha_reduce), "plots/alpha_heatmap.png")
        log.log_figure(plot.alpha_evolution(alpha_history), "plots/alpha_evolution.png")
        log.log_figure(plot.curves(history), "plots/curves.png")
    plt.close("all")


def log_epoch(log: RunLogger, metrics: dict[str, Any], genotype) -> None:
    """One epoch into MLflow: its numeric metrics at step = epoch, and the current genotype
    (``genotype.json``, rewritten each epoch, so a run stopped early still has one)."""
    log.log_metrics(metrics, step=int(metrics["epoch"]))
    log.set_tags({"genotype": genotype.short()})
    log.log_dict(genotype.to_dict(), "genotype.json")


def make_search_trainer(cfg: SearchConfig, run: dict[str, Any], storage_path: str,
                        callbacks: list | None = None) -> "ray.train.torch.TorchTrainer":
    """The search's TorchTrainer; ``run``: {name, tracking_uri, run_id}."""
    return make_trainer(train_loop_per_worker, {"search": cfg.to_dict(), "run": run}, cfg, run["name"],
                        storage_path, callbacks)
