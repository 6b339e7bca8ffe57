"""Named configs (``--preset``): field values over the configs' defaults, for the search and for
the evaluation stage."""

from __future__ import annotations

from typing import Any

DEFAULT_PRESET = "digits-demo"  # what every command and the Python API start from

SEARCH_PRESETS: dict[str, dict[str, Any]] = {
    "digits-demo": dict(dataset="digits", C=8, layers=5, epochs=6, batch_size=32, arch_lr=3e-2,
                        teacher_interval=5, vote_count=2, sharpness_every=2, sharpness_batches=1,
                        plot_every=0),
    # Where plain DARTS fails on embedded data: NAS-Bench-201's cell (N=5 per stage) on digits. In
    # ~1 minute per search DARTS' derived cell fills with skip connections, its one-hot network falls
    # to chance on the held-out split and hessian_eig climbs. 1 worker of 0.99 CPU: two at a time on 2 CPUs.
    "collapse-demo": dict(dataset="digits", space="nb201", C=8, layers=5, epochs=20, batch_size=32, arch_lr=3e-3,
                          num_workers=1, cpus_per_worker=0.99, teacher_interval=10, vote_count=3,
                          sharpness_every=2, sharpness_batches=1, plot_every=0),
    # The DARTS cell family's collapse on embedded data: RobustDARTS' S3 (none, skip, sep_conv_3x3 per
    # edge) on DARTS' macro network, C=8, 5 cells, digits; about a minute per search on one CPU.
    "collapse-s3": dict(dataset="digits", space="s3", C=8, layers=5, epochs=20, batch_size=32, arch_lr=3e-3,
                        num_workers=1, cpus_per_worker=0.99, teacher_interval=10, vote_count=3,
                        sharpness_every=2, sharpness_batches=1, plot_every=0),
    # DARTS' search: one GPU, batch 64. More workers multiply the global batch (lr is not scaled).
    "cifar10-darts": dict(dataset="cifar10", data_dir="data", C=16, layers=8, epochs=50, batch_size=64,
                          num_workers=1, teacher_interval=100, vote_count=3, sharpness_every=5),
}

EVAL_PRESETS: dict[str, dict[str, Any]] = {
    "digits-demo": dict(dataset="digits", C=8, layers=5, epochs=10, batch_size=64, cutout=0,
                        drop_path=0.1, auxiliary_weight=0.4),
    # DARTS' evaluation: one GPU, batch 96.
    "cifar10-darts": dict(dataset="cifar10", data_dir="data", C=36, layers=20, epochs=600, batch_size=96,
                          num_workers=1, cutout=16, drop_path=0.2, auxiliary_weight=0.4),
    # NAS-Bench-201's training of a cell: N=5 cells per stage, C=16, 200 epochs, batch 256, lr 0.1, wd 5e-4.
    "cifar10-nb201": dict(dataset="cifar10", data_dir="data", C=16, layers=5, epochs=200, batch_size=256,
                          num_workers=1, lr=0.1, weight_decay=5e-4, lr_min=0.0, cutout=0, drop_path=0.0,
                          auxiliary_weight=0.0),
}


def eval_preset(space: str, dataset: str = "cifar10") -> str:
    """The evaluation preset for a genotype of ``space`` trained on ``dataset``."""
    if dataset == "digits":
        return "digits-demo"
    return "cifar10-nb201" if space == "nb201" else "cifar10-darts"
