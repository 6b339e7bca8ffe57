"""The proxy retrain of a search's genotype (``--proxy-epochs``): its flags and its config."""

from __future__ import annotations

from sddarts.trainables.config import ConfigError, EvalConfig, SearchConfig


def proxy_config(cfg: SearchConfig, epochs: int, C: int = 0, layers: int = 0) -> EvalConfig:
    """The proxy retrain of a search's genotype: trained from scratch on the search's w- and alpha-
    data for ``epochs`` epochs, measured on its held-out split; same data, seed and resources, a
    network of ``C`` channels and ``layers`` cells (0: the search's), no auxiliary head, cutout or
    drop-path."""
    shared = ("dataset", "data_dir", "image_size", "data_mean", "data_std", "seed", "batch_size", "steps_per_epoch", "num_workers", "cpus_per_worker",
              "gpus_per_worker", "loader_workers", "max_failures", "holdout_portion", "precision", "channels_last", "augment_on_device")
    return EvalConfig(**{k: getattr(cfg, k) for k in shared}, epochs=epochs, C=C or cfg.C, layers=layers or cfg.layers,
                      auxiliary_weight=0.0, cutout=0, drop_path=0.0).validate()


def add_proxy_flags(group, default_help: str = "0") -> None:
    """``--proxy-epochs``, ``--proxy-C``, ``--proxy-layers``: the proxy retrain of each completed search.
    ``--proxy-epochs`` is None unless given (the command's default applies)."""
    group.add_argument("--proxy-epochs", type=int, default=None, help="retrain each completed search's genotype from "
                       f"scratch for N epochs and report its held-out accuracy, proxy_acc (0: off; default {default_help})")
    group.add_argument("--proxy-C", type=int, default=0, help="proxy network channels (0: the search's C)")
    group.add_argument("--proxy-layers", type=int, default=0, help="proxy network cells (0: the search's layers)")


def proxy_settings(args, base: SearchConfig, default_epochs: int = 0) -> dict[str, int]:
    """The proxy flags (``default_epochs`` where ``--proxy-epochs`` is not given), checked against
    the base config's space."""
    from sddarts.search_spaces import get_space

    if args.proxy_epochs is None:
        args.proxy_epochs = default_epochs
    for name in ("proxy_epochs", "proxy_C", "proxy_layers"):
        if getattr(args, name) < 0:
            raise ConfigError(f"{name} must be >= 0 (got {getattr(args, name)})")
    low = get_space(base.space).min_layers
    if args.proxy_C % 2 or (args.proxy_layers and args.proxy_layers < low):
        raise ConfigError(f"proxy_C must be even and proxy_layers 0 or >= {low} for space {base.space} "
                          f"(got {args.proxy_C}, {args.proxy_layers})")
    return {"proxy_epochs": args.proxy_epochs, "proxy_C": args.proxy_C, "proxy_layers": args.proxy_layers}
