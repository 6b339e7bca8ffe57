"""The search on one process, without Ray or MLflow: for a notebook, to debug a space or an op.

It runs the same epochs as a Ray Train worker (``search_epochs``: the bilevel steps, the held-out
measurements, DARTS-ES) over the same splits, on one device::

    from sddarts.trainables.sd_darts.searcher import Searcher
    searcher = Searcher({"dataset": "digits", "epochs": 3, "C": 8, "layers": 5})
    for metrics in searcher:
        print(metrics["epoch"], metrics["val_acc"], metrics["genotype"])
    searcher.genotype          # the derived cell (a Genotype or NB201Genotype)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.data.datasets import DataSource, check_available, with_statistics
from sddarts.trainables.data.nb201_bench import Bench
from sddarts.trainables.sd_darts.seeding import seed_everything
from sddarts.trainables.sd_darts.epoch import make_supernet, search_epochs, search_loaders
from sddarts.trainables.sd_darts.search_step import SearchState


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
        seed_everything(cfg.seed)
        self.loaders = search_loaders(cfg, download=cfg.download)
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

    @property
    def stopped(self) -> bool:
        """Whether DARTS-ES ended the search."""
        return bool(self.history) and "es_returned_epoch" in self.history[-1]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for metrics in search_epochs(self.state, self.loaders, self.device, self.bench, self.say):
            self.history.append(metrics)
            yield metrics

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
