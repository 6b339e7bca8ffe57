"""The search on one process, without Ray or MLflow: for a notebook, to debug a space or an op.

It runs the same epoch as a Ray Train worker (``search_epoch``: the bilevel steps, the held-out
measurements, DARTS-ES) over the same splits, on one device::

    from sddarts.trainables.searcher import Searcher
    searcher = Searcher({"dataset": "digits", "epochs": 3, "C": 8, "layers": 5})
    for metrics in searcher:
        print(metrics["epoch"], metrics["val_acc"], metrics["genotype"])
    searcher.genotype          # the derived cell (a Genotype or NB201Genotype)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.config import SEARCH_PRESETS, ConfigError, SearchConfig
from sddarts.trainables.data import DataSource, check_available, with_statistics
from sddarts.trainables.nb201_bench import Bench
from sddarts.trainables.runtime import seed_everything
from sddarts.trainables.search_epoch import bench_figures, early_stop, make_supernet, measure, search_epoch, search_loaders
from sddarts.trainables.search_step import SearchState


class Searcher:
    """A search over ``config`` on ``device``, one epoch per step of iteration.

    Args:
        config: a ``SearchConfig`` or a dict of its fields; default: the defaults.
        preset: a search preset's name (``digits-demo``, ``collapse-demo``, ...), applied first.
        overrides: config fields set last (``epochs=3``). The result is checked as the CLI checks
            it: a bad field raises ``ConfigError`` with the CLI's one line. Worker and Ray settings
            (``num_workers``, ``cpus_per_worker``, ...) do not apply: this runs on one process.
        device: where the supernet runs (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
        say: receives the notes a worker would print (DARTS-ES stopping); default ``print``.

    Iterating yields, per epoch, the figures a search logs to MLflow (``train_ce``, ``val_acc``,
    ``derived_val_acc``, ``discretization_gap``, ``hessian_eig`` when measured, ...) with
    ``genotype`` (its one-line form) and ``epoch``. ``history`` keeps them; ``genotype`` is the
    latest derived architecture (DARTS-ES' look-back one when it stopped the search).
    """

    def __init__(self, config: SearchConfig | dict[str, Any] | None = None, *, preset: str = "",
                 device: str | torch.device = "cpu", say: Callable[[str], None] = print, **overrides: Any):
        cfg = search_config(config, preset, **overrides)
        if cfg.dataset == "imagefolder" and not cfg.data_mean:  # read the folder once, as the CLI's driver does
            cfg = with_statistics(cfg, check_available(DataSource.of(cfg)).info)
        self.cfg = cfg
        self.device = torch.device(device)
        self.say = say
        self.history: list[dict[str, Any]] = []
        self.stopped = False  # DARTS-ES ended the search
        seed_everything(cfg.seed)
        self.w_loader, self.a_loader, self.holdout = search_loaders(cfg, download=cfg.download)
        self.state = SearchState.create(cfg, make_supernet(cfg, self.device))
        self.bench = Bench(cfg.nb201_bench)

    @property
    def net(self) -> torch.nn.Module:
        """The supernet (alpha included: ``net.alphas()``)."""
        return self.state.net

    @property
    def genotype(self):
        """The architecture derived at the last epoch run, or from the untrained alpha before any."""
        if self.history:
            return genotype_from_json(self.history[-1]["genotype_json"])
        return self.state.net.derive()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        state, cfg = self.state, self.cfg
        for epoch in range(len(self.history), cfg.epochs if not self.stopped else 0):
            self.w_loader.sampler.set_epoch(epoch)
            self.a_loader.sampler.set_epoch(epoch)
            metrics = search_epoch(state, self.w_loader, self.a_loader, self.device)
            metrics.update(measure(state, self.holdout, self.device, epoch + 1))
            state.genotypes[epoch + 1] = metrics["genotype_json"]
            self.stopped = early_stop(state, metrics, self.say)
            metrics.update(bench_figures(self.bench, metrics, self.say))
            state.history.append({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
            self.history.append(metrics)
            yield metrics
            if self.stopped:
                return

    def run(self) -> list[dict[str, Any]]:
        """Runs the remaining epochs; returns ``history``."""
        for _ in self:
            pass
        return self.history


def search_config(config: SearchConfig | dict[str, Any] | None = None, preset: str = "",
                  **overrides: Any) -> SearchConfig:
    """A checked ``SearchConfig``: ``preset``'s fields, then ``config``'s, then ``overrides``."""
    if preset and preset not in SEARCH_PRESETS:
        raise ConfigError(f"preset {preset!r} is not a search preset; use one of {', '.join(SEARCH_PRESETS)}")
    values = dict(SEARCH_PRESETS.get(preset, {}))
    if isinstance(config, SearchConfig):
        values.update(config.to_dict())
    elif config is not None:
        values.update(config)
    values.update(overrides)
    return SearchConfig.from_dict(values).validate()
