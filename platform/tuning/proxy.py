"""The proxy retrain of a search's genotype (``--proxy-epochs``): its settings and its config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import EvalConfig, SearchConfig

if TYPE_CHECKING:
    from sddarts.platform.options import ProxyOptions


def proxy_config(cfg: SearchConfig, epochs: int, C: int = 0, layers: int = 0) -> EvalConfig:
    """The proxy retrain of a search's genotype: trained from scratch on the search's w- and alpha-
    data for ``epochs`` epochs, measured on its held-out split; same data, seed and resources, a
    network of ``C`` channels and ``layers`` cells (0: the search's), no auxiliary head, cutout or
    drop-path."""
    shared = ("dataset", "data_dir", "image_size", "data_mean", "data_std", "seed", "batch_size", "steps_per_epoch", "num_workers", "cpus_per_worker",
              "gpus_per_worker", "loader_workers", "max_failures", "holdout_portion", "precision", "channels_last", "augment_on_device")
    return EvalConfig(**{k: getattr(cfg, k) for k in shared}, epochs=epochs, C=C or cfg.C, layers=layers or cfg.layers,
                      auxiliary_weight=0.0, cutout=0, drop_path=0.0).validate()


def proxy_settings(options: ProxyOptions, base: SearchConfig, default_epochs: int = 0) -> dict[str, int]:
    """The proxy options (``default_epochs`` where ``proxy_epochs`` is None), checked against the
    base config's space."""
    from sddarts.search_spaces import get_space

    options.check()
    epochs = default_epochs if options.proxy_epochs is None else options.proxy_epochs
    low = get_space(base.space).min_layers
    if options.proxy_C % 2 or (options.proxy_layers and options.proxy_layers < low):
        raise ConfigError(f"proxy_C must be even and proxy_layers 0 or >= {low} for space {base.space} "
                          f"(got {options.proxy_C}, {options.proxy_layers})")
    return {"proxy_epochs": epochs, "proxy_C": options.proxy_C, "proxy_layers": options.proxy_layers}
