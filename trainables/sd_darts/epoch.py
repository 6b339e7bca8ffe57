"""The search's epochs, whatever runs them (a Ray Train worker or ``Searcher``): ``search_epochs``
yields one epoch after another (the bilevel steps, the held-out measurements, DARTS-ES' decision,
the benchmark's figures of the derived cell), written once for both; and what it runs on (the
loaders, the supernet)."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, NamedTuple

import torch
from torch.utils.data import DataLoader

from sddarts.search_spaces import genotype_from_json, get_space
from sddarts.search_spaces.aux_skip import aux_skip_coefficient, set_aux_skip, without_aux_skip
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.data.datasets import DataSource, dataset_info, search_splits
from sddarts.trainables.sd_darts.distributed import replica_drift, sync_buffers, world_size
from sddarts.trainables.sd_darts.beta_decay import beta_weight
from sddarts.trainables.sd_darts.early_stop import eigenvalue_reports, sharpness_stop
from sddarts.trainables.sd_darts.measure import alpha_entropy, alpha_sharpness, collapse_stats, supernet_accuracy
from sddarts.trainables.data.nb201_bench import Bench
from sddarts.trainables.sd_darts.perturb import perturb_epsilon
from sddarts.trainables.data.loaders import device_augment, make_loader, to_device
from sddarts.trainables.sd_darts.search_step import SearchState, search_step
from sddarts.trainables.sd_darts.step_stats import StepStats


StepHook = Callable[[int, int], None]  # (steps done in the epoch, steps in the epoch), after each step


class Loaders(NamedTuple):
    """A worker's shard of the w-, alpha- and held-out splits."""

    w: DataLoader
    alpha: DataLoader
    holdout: DataLoader

    def steps(self, cfg: SearchConfig) -> int:
        """Bilevel steps per epoch."""
        return min(len(self.w), len(self.alpha), cfg.steps_per_epoch or len(self.w))


def search_epochs(state: SearchState, loaders: Loaders, device: torch.device, bench: Bench,
                  say: Callable[[str], None], progress: Callable[[int], StepHook | None] | None = None
                  ) -> Iterator[dict[str, Any]]:
    """The epochs left from where ``state`` stands (its ``history``) to the last, or to DARTS-ES'
    stop. Each epoch: the bilevel steps (``progress(epoch)``: a hook called after each), the
    held-out measurements, DARTS-ES, the benchmark's figures; ``state`` is updated (history,
    alpha, genotypes) before its figures are yielded."""
    cfg = state.cfg
    if state.history and "es_returned_epoch" in state.history[-1]:  # DARTS-ES stopped it already
        return
    for epoch in range(len(state.history), cfg.epochs):
        t0 = time.time()
        loaders.w.sampler.set_epoch(epoch)
        loaders.alpha.sampler.set_epoch(epoch)
        metrics = search_epoch(state, loaders.w, loaders.alpha, device, progress(epoch + 1) if progress else None)
        metrics.update(measure(state, loaders.holdout, device, epoch + 1))
        state.genotypes[epoch + 1] = metrics["genotype_json"]
        stopped = early_stop(state, metrics, say)
        metrics.update(bench_figures(bench, metrics, say), epoch_time_s=time.time() - t0)
        state.history.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        state.alpha_history.append(tuple(w.detach().cpu().numpy() for w in state.net.mix_probs()))
        yield metrics
        if stopped:
            return


def search_loaders(cfg: SearchConfig, rank: int = 0, world: int = 1, download: bool = False) -> Loaders:
    """Loaders over worker ``rank``'s shard of the w-, alpha- and held-out splits."""
    splits = search_splits(DataSource.of(cfg), cfg.train_portion, cfg.holdout_portion, cfg.seed, download,
                           crop_flip=not cfg.augment_on_device)
    return Loaders(make_loader(splits.w_train, cfg, rank, world),
            make_loader(splits.alpha_train, cfg, rank, world, stream=1),  # its own order
            make_loader(splits.holdout, cfg, rank, world, shuffle=False))


def make_supernet(cfg: SearchConfig, device: torch.device) -> torch.nn.Module:
    """The space's supernet for the dataset's channels and classes, on ``device``."""
    info = dataset_info(DataSource.of(cfg))
    net = get_space(cfg.space).supernet(cfg.C, info.num_classes, cfg.layers, info.in_channels, cfg.mixed_op,
                                        cfg.partial_channels, cfg.aux_skip > 0).to(device)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def bench_figures(bench: Bench, metrics: dict[str, Any], say: Callable[[str], None]) -> dict[str, float]:
    """NAS-Bench-201's figures (``bench_*``) of the epoch's genotype, where an archive is set."""
    return bench.epoch_figures(genotype_from_json(metrics["genotype_json"]), say) if bench.path else {}


def fix_schedules(state: SearchState, epoch: int) -> dict[str, float]:
    """The field's fixes' coefficients for 0-based ``epoch``, set where they act (the supernet,
    its teachers and unrolled copy; the step), and returned for the epoch's figures."""
    cfg, figures = state.cfg, {}
    if cfg.aux_skip:
        figures["aux_skip_coef"] = aux_skip_coefficient(cfg.aux_skip, epoch, cfg.epochs)
        set_aux_skip([state.net, state.shadow, *state.ring.teachers], figures["aux_skip_coef"])
    if cfg.beta_decay:
        state.beta_weight = figures["beta_weight"] = beta_weight(cfg.beta_decay, epoch, cfg.beta_decay_epochs or cfg.epochs)
    if cfg.perturb != "none":
        state.perturb_epsilon = figures["perturb_epsilon"] = perturb_epsilon(cfg.perturb_epsilon, epoch, cfg.epochs)
    return figures


def search_epoch(state: SearchState, w_loader: DataLoader, a_loader: DataLoader, device: torch.device,
                 on_step: StepHook | None = None) -> dict[str, float]:
    """One epoch of bilevel steps; the training figures over all workers (``train_ce`` is the
    cross-entropy alone, ``train_loss`` adds the distillation term; ``sd_loss``/``agreement`` of
    the w step and ``sd_loss_arch``/``agreement_arch`` of the alpha step where the SD term applies;
    ``snapshot_kl``, the mean KL of each new teacher against the student at its first use)."""
    cfg = state.cfg
    schedules = fix_schedules(state, len(state.history))
    stats, augment = StepStats(), device_augment(cfg, device)
    steps = min(len(w_loader), len(a_loader), cfg.steps_per_epoch or len(w_loader))
    for i, (bw, ba) in enumerate(zip(w_loader, a_loader)):
        if i >= steps:
            break
        search_step(state, to_device(bw, device, cfg.channels_last, augment),
                    to_device(ba, device, cfg.channels_last, augment), stats)
        if on_step is not None:
            on_step(i + 1, steps)
    state.scheduler.step()
    sync_buffers(state.net)  # every replica, and so rank 0's checkpoint, holds the same statistics
    totals = stats.totals(device)
    metrics = {"step": state.step, "train_ce": stats.mean(totals, "ce"), "train_loss": stats.mean(totals, "loss"),
               "train_acc": 100 * stats.mean(totals, "correct"), "teachers": len(state.ring),
               "lr": state.scheduler.get_last_lr()[0], **schedules}
    for key, count in (("beta_loss", "beta_n"), ("sd_loss", "sd_n"), ("agreement", "sd_n"), ("sd_loss_arch", "sd_n_arch"),
                       ("agreement_arch", "sd_n_arch"), ("snapshot_kl", "snapshots")):
        if key in totals:
            metrics[key] = stats.mean(totals, key, count)
    return metrics


def measure(state: SearchState, holdout: DataLoader, device: torch.device, epoch: int) -> dict[str, Any]:
    """Held-out figures of the supernet and of its current genotype, alpha's entropy, the collapse
    diagnostics, sharpness when due, and (on several workers) how far the replicas and teachers
    drifted apart."""
    cfg, net = state.cfg, state.net
    genotype = net.derive()
    val_loss, val_acc = supernet_accuracy(net, holdout, device)
    with without_aux_skip(net):  # the derived cell has no auxiliary skip
        _, derived_acc = supernet_accuracy(net, holdout, device, net.genotype_weights(genotype))
    metrics: dict[str, Any] = {"epoch": epoch, "val_loss": val_loss, "val_acc": val_acc, "derived_val_acc": derived_acc,
                               "discretization_gap": val_acc - derived_acc, "alpha_entropy": alpha_entropy(net),
                               **collapse_stats(genotype, net.mix_probs())}
    if world_size() > 1:
        metrics["replica_drift"] = replica_drift(net)
        metrics["teacher_drift"] = max([replica_drift(t) for t in state.ring.teachers] + [0.0])
    if cfg.sharpness_every and (epoch % cfg.sharpness_every == 0 or epoch == cfg.epochs):
        eig = alpha_sharpness(net, holdout, device, cfg.sharpness_batches, cfg.sharpness_iters, cfg.sharpness_tol,
                              seed=cfg.seed + state.step)
        metrics.update(hessian_eig=eig.value, hessian_eig_residual=eig.residual, hessian_eig_iters=eig.iters)
    metrics.update(genotype=genotype.short(), genotype_json=genotype.to_json(indent=None))
    return metrics


def early_stop(state: SearchState, metrics: dict[str, Any], say: Callable[[str], None]) -> bool:
    """DARTS-ES (``--early-stop sharpness``): True when this epoch's eigenvalue ends the search;
    the epoch's genotype is then the look-back epoch's and ``es_returned_epoch`` says which."""
    cfg = state.cfg
    if cfg.early_stop != "sharpness" or "hessian_eig" not in metrics:
        return False
    back = sharpness_stop(eigenvalue_reports(state.history + [metrics]), cfg.es_window, cfg.es_factor,
                          cfg.es_start_epoch, cfg.es_lookback)
    if back is None:
        return False
    genotype = genotype_from_json(state.genotypes[back])
    metrics.update(es_stopped_epoch=metrics["epoch"], es_returned_epoch=back, genotype=genotype.short(),
                   genotype_json=genotype.to_json(indent=None))
    say(f"DARTS-ES: hessian_eig's local average grew more than {cfg.es_factor}x since epoch {back}: "
               f"stopping at epoch {metrics['epoch']} with epoch {back}'s genotype")
    return True
