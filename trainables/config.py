"""Typed configs for the search and the evaluation stage: the one source of truth for defaults.

Every field carries its help text and allowed range in ``metadata``; the CLI builds one flag
per field from it and ``validate()`` checks it, so a bad value fails before any Ray or MLflow
work starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from sddarts.search_spaces.errors import ConfigError
from sddarts.search_spaces import SPACES as _SPACES
from sddarts.trainables.data.datasets import DATASETS
from sddarts.trainables.sd_darts.distill import TEACHER_BN
from sddarts.trainables.presets import EVAL_PRESETS, SEARCH_PRESETS  # noqa: F401 - the configs' presets

SPACES = tuple(_SPACES)




def param(default: Any, help: str, *, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, choices: Sequence[Any] | None = None,
          flag: bool = True) -> Any:
    """A config (or option) field with its help text and allowed range; ``flag=False``: the CLI
    gives it a flag of its own rather than the generated one."""
    meta = {"help": help, "ge": ge, "gt": gt, "le": le, "lt": lt, "choices": tuple(choices) if choices else None,
            "flag": flag}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _range_text(meta: dict) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    lo = f"> {meta['gt']}" if meta["gt"] is not None else f">= {meta['ge']}" if meta["ge"] is not None else ""
    hi = f"< {meta['lt']}" if meta["lt"] is not None else f"<= {meta['le']}" if meta["le"] is not None else ""
    return " and ".join(part for part in (lo, hi) if part) or "any value"


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def field_type(f: dataclasses.Field) -> type:
    """A config field's Python type (annotations are strings under ``from __future__ import annotations``;
    ``int | None`` is ``int``)."""
    return _TYPES[f.type.removesuffix(" | None")] if isinstance(f.type, str) else f.type


def allowed_range(cls: type, name: str) -> str:
    """The allowed range of field ``name`` in words, e.g. ``'>= 0'``."""
    return _range_text({f.name: f for f in dataclasses.fields(cls)}[name].metadata)


def check_fields(obj: Any) -> None:
    """Checks every field of dataclass ``obj`` against its type and its ``param`` range; raises
    ConfigError naming the first bad field (None passes where the field's type allows it)."""
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        if value is None and isinstance(f.type, str) and f.type.endswith("| None"):
            continue
        if not meta.get("flag", True):  # checked by its own code (a dict of variants, say)
            continue
        expected = field_type(f)
        ok_type = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type:
            raise ConfigError(f"{f.name} must be a {expected.__name__} (got {value!r})")
        if expected is float and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, {_range_text(meta)} (got {value!r})")
        bad = (
            (meta["choices"] and value not in meta["choices"])
            or (meta["ge"] is not None and value < meta["ge"])
            or (meta["gt"] is not None and value <= meta["gt"])
            or (meta["le"] is not None and value > meta["le"])
            or (meta["lt"] is not None and value >= meta["lt"])
        )
        if bad:
            raise ConfigError(f"{f.name} must be {_range_text(meta)} (got {value!r})")


@dataclass
class CommonConfig:
    """Fields shared by the search and the evaluation stage."""

    dataset: str = param("digits", "dataset to train on: digits (bundled), cifar10, cifar100, NAS-Bench-201's "
                         "cifar10-valid and ImageNet16-120, or imagefolder (your own images)", choices=DATASETS)
    data_dir: str = param("", "folder holding the dataset's files: CIFAR's python batches, ImageNet16/, or an image "
                          "folder's train/ and val/ (or test/) ('' for digits, which is bundled)")
    image_size: int = param(0, "imagefolder: side in pixels each image is resized (shorter side) and center-cropped to "
                            "(0: 32); the other datasets have their own size", ge=0, le=1024)
    data_mean: str = param("", "imagefolder: per-channel mean of the training images in [0, 1], comma-separated ('': "
                           "computed on the driver and recorded)")
    data_std: str = param("", "imagefolder: per-channel standard deviation, comma-separated ('': computed with the mean)")
    download: bool = param(False, "download CIFAR into --data-dir if it is missing")
    seed: int = param(0, "random seed (weights, alpha, data order)", ge=0, le=2**32 - 1)
    epochs: int = param(10, "training epochs", ge=1, le=100_000)
    batch_size: int = param(64, "batch size per worker (the global batch is num_workers x this)", ge=1, le=65_536)
    steps_per_epoch: int = param(0, "cap on optimisation steps per epoch (0 = a full pass)", ge=0)
    num_workers: int = param(2, "Ray Train data-parallel workers", ge=1, le=4096)
    cpus_per_worker: float = param(1.0, "CPUs reserved per Train worker (Ray counts in steps of 0.0001)", ge=0.01, le=1024)
    gpus_per_worker: float = param(0.0, "GPUs per Train worker (> 0 trains on GPU with NCCL)", ge=0, le=64)
    loader_workers: int = param(-1, "DataLoader worker processes per Train worker (-1: one per reserved CPU beyond "
                                "the first, persistent)", ge=-1, le=64)
    precision: str = param("fp32", "fp32, or bf16: autocast for the forwards and backwards (alpha's softmax, the "
                           "finite-difference Hessian and sharpness stay fp32)", choices=("fp32", "bf16"))
    channels_last: bool = param(False, "NHWC memory layout for the network and its inputs (faster convolutions on GPUs)")
    augment_on_device: bool = param(False, "CIFAR: random crop and flip on the whole batch on its device instead of "
                                    "per sample in the loader (cutout stays in the loader)")
    max_failures: int = param(2, "Train worker-group restarts from the last checkpoint before the run fails (a sweep's trial: "
                                        "Tune's restarts of the trial)", ge=0, le=100)
    C: int = param(16, "initial channels", ge=2, le=1024)
    layers: int = param(8, "cells in the network (nb201: cells per stage)", ge=1, le=200)
    grad_clip: float = param(5.0, "gradient-norm clip for the network weights (0 = off)", ge=0)
    weight_decay: float = param(3e-4, "weight decay of the network weights", ge=0)
    lr: float = param(0.025, "SGD learning rate of the network weights (cosine schedule)", gt=0)
    lr_min: float = param(0.001, "final learning rate of the cosine schedule", ge=0)
    momentum: float = param(0.9, "SGD momentum", ge=0, lt=1)

    def validate(self) -> "CommonConfig":
        """Checks every field against its range; raises ConfigError naming the first bad field."""
        check_fields(self)
        if self.dataset != "digits" and not self.data_dir:
            raise ConfigError(f"data_dir must be set for dataset {self.dataset!r} (the folder holding its files; for "
                              "cifar10 and cifar100 add --download to fetch them)")
        if self.download and self.dataset not in ("cifar10", "cifar100"):
            raise ConfigError(f"download fetches cifar10 and cifar100 only (got dataset {self.dataset})")
        if self.augment_on_device and self.dataset in ("digits", "imagefolder"):
            raise ConfigError("augment_on_device applies to CIFAR's crop and flip (and to cifar10-valid's and "
                              f"ImageNet16-120's); {self.dataset} augments in its loader")
        self._validate_folder_fields()
        if self.gpus_per_worker and self.gpus_per_worker < 1 and self.num_workers > 1:
            raise ConfigError(f"gpus_per_worker must be >= 1 with num_workers {self.num_workers} (got "
                              f"{self.gpus_per_worker:g}): NCCL refuses two ranks on one GPU; use one worker per GPU")
        if self.C % 2:
            raise ConfigError(f"C must be even, since reduction cells halve channels in FactorizedReduce (got {self.C})")
        return self

    def _validate_folder_fields(self) -> None:
        """``image_size``, ``data_mean`` and ``data_std`` belong to an image folder; the statistics
        are as many numbers as channels (1 or 3), the deviations positive."""
        if self.dataset != "imagefolder":
            for name, unset in (("image_size", 0), ("data_mean", ""), ("data_std", "")):
                if getattr(self, name) != unset:
                    raise ConfigError(f"{name} applies to dataset imagefolder only (got {getattr(self, name)!r} "
                                      f"with dataset {self.dataset})")
            return
        if bool(self.data_mean.strip()) != bool(self.data_std.strip()):
            raise ConfigError("data_mean and data_std go together: give both, or neither (computed from the images)")
        stats = {}
        for name in ("data_mean", "data_std"):
            try:
                stats[name] = [float(t) for t in getattr(self, name).split(",")] if getattr(self, name).strip() else []
            except ValueError:
                raise ConfigError(f"{name} must be comma-separated numbers, one per channel (got {getattr(self, name)!r})") from None
        mean, std = stats["data_mean"], stats["data_std"]
        if mean and (len(mean) not in (1, 3) or len(std) != len(mean) or min(std) <= 0
                     or not all(math.isfinite(v) for v in mean + std)):
            raise ConfigError(f"data_mean and data_std must be 1 or 3 finite numbers each, the deviations > 0 (got "
                              f"{self.data_mean!r} and {self.data_std!r})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def dataloader_workers(self) -> int:
        """``loader_workers``, with -1 resolved: one per whole CPU reserved beyond the first."""
        return self.loader_workers if self.loader_workers >= 0 else max(0, math.floor(self.cpus_per_worker) - 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CommonConfig":
        """Builds a config from a dict, rejecting unknown keys with the list of known ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(names))}")
        return cls(**data)

    def replace(self, **changes: Any) -> "CommonConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class SearchConfig(CommonConfig):
    """An SD-DARTS search. Defaults follow DARTS (Liu et al., 2019) where it has one."""

    space: str = param("darts", "search space: darts, RobustDARTS' s1-s4, NAS-Bench-201's cell (nb201)", choices=SPACES)
    holdout_portion: float = param(0.2, "share of the training split held out for selection: val_*, derived_val_acc, "
                                   "hessian_eig and proxy_acc are measured on it; neither w nor alpha trains on it", gt=0, lt=1)
    train_portion: float = param(0.5, "share of the rest of the training split that trains w; the remainder trains alpha", gt=0, lt=1)
    order: int = param(1, "bilevel approximation: 1 = first order, 2 = second order (unrolled)", choices=(1, 2))
    arch_lr: float = param(3e-4, "Adam learning rate of alpha", gt=0)
    arch_weight_decay: float = param(1e-3, "Adam weight decay of alpha", ge=0)
    sd_weight: float = param(1.0, "weight of the self-distillation term (0 = plain DARTS)", ge=0)
    temperature: float = param(2.0, "softening temperature T of teachers and student", gt=0)
    vote_count: int = param(3, "teachers kept in the ring and voting (0 = plain DARTS)", ge=0, le=64)
    teacher_interval: int = param(50, "optimisation steps between teacher snapshots", ge=1, le=10_000_000)
    voting: str = param("soft", "how teachers vote: soft (mean probabilities) or hard (majority argmax)", choices=("soft", "hard"))
    distill_on: str = param("both", "which update gets the distillation term", choices=("both", "weights", "arch"))
    aux_skip: float = param(0.0, "DARTS-: auxiliary skip connection on every edge, outside the softmax, its weight "
                            "decayed linearly from this value over the search (0 = off; DARTS- uses 1)", ge=0, le=100)
    beta_decay: float = param(0.0, "beta-DARTS: weight of the beta-decay regulariser (mean logsumexp of alpha) on the "
                              "alpha step, reached at epoch beta_decay_epochs and growing linearly from 0 (0 = off; the "
                              "official NAS-Bench-201 run: 50 at 100 epochs)", ge=0, le=1e6)
    beta_decay_epochs: int = param(0, "beta-DARTS: the epoch at which the regulariser's weight reaches beta_decay (0: "
                                   "the search's epochs; the official code: 100)", ge=0, le=100_000)
    perturb: str = param("none", "SDARTS: perturb softmax(alpha) on the w step: random (SDARTS-RS, uniform noise) or "
                         "adversarial (SDARTS-ADV, 7-step PGD); none = off", choices=("none", "random", "adversarial"))
    perturb_epsilon: float = param(0.3, "SDARTS: the perturbation's final L-inf radius, grown linearly from 0.03 over "
                                   "the search (SDARTS: 0.3)", gt=0, le=1)
    partial_channels: int = param(1, "PC-DARTS: K, send 1/K of each edge's channels through its ops, with channel "
                                  "shuffle and edge normalisation (1 = off; PC-DARTS uses 4); C must divide by K",
                                  ge=1, le=64)
    mixed_op: str = param("batched", "how the DARTS-family supernet computes its mixed edges: batched (every edge "
                          "leaving a state in one block) or reference (DARTS' per-edge MixedOp: the same maths, slower; "
                          "for debugging)", choices=("batched", "reference"))
    teacher_vmap: bool = param(False, "run all teachers in one vmapped forward (torch.func; same outputs, for "
                               "launch-bound GPUs; no faster on CPUs)")
    teacher_bn: str = param("batch", "how teachers normalise: batch (the batch's statistics, as the student) or "
                            "running (eval mode, the snapshot's running statistics)", choices=TEACHER_BN)
    sharpness_every: int = param(0, "epochs between Hessian-eigenvalue (sharpness) measurements (0 = off)", ge=0)
    sharpness_batches: int = param(2, "held-out batches per sharpness measurement", ge=1)
    sharpness_iters: int = param(30, "cap on Lanczos steps (Hessian-vector products) per sharpness measurement", ge=1, le=10_000)
    sharpness_tol: float = param(0.01, "sharpness: stop when the Ritz residual is below this share of the eigenvalue",
                                 gt=0, lt=1)
    nb201_bench: str = param("", "nb201: NATS-Bench's fast-mode archive folder (NATS-tss-v1_0-3ffb9-simple); logs the "
                             "benchmark's accuracy of the derived cell each epoch ('': $TORCH_HOME's copy if there)")
    plot_every: int = param(0, "epochs between cell-diagram artifacts (0 = only at the end)", ge=0)
    early_stop: str = param("none", "sharpness: stop when hessian_eig's local average grows by more than es_factor "
                            "(DARTS-ES) and return the look-back genotype", choices=("none", "sharpness"))
    es_window: int = param(5, "DARTS-ES: eigenvalue reports averaged in each local average", ge=1, le=1000)
    es_factor: float = param(1.3, "DARTS-ES: stop when a local average exceeds the one es_lookback reports earlier "
                             "by this factor", gt=0)
    es_start_epoch: int = param(10, "DARTS-ES: the earliest epoch the look-back point may be", ge=0)
    es_lookback: int = param(4, "DARTS-ES: reports between the compared local averages (the genotype returned is "
                             "the earlier one's)", ge=1, le=1000)

    def validate(self) -> "SearchConfig":
        super().validate()
        min_layers = _SPACES[self.space].min_layers
        if self.layers < min_layers:
            raise ConfigError(f"layers must be >= {min_layers} for space {self.space} (got {self.layers})")
        if self.nb201_bench and self.space != "nb201":
            raise ConfigError(f"nb201_bench applies to space nb201 only (got space {self.space})")
        if self.C % self.partial_channels:
            raise ConfigError(f"C must be divisible by partial_channels (got C {self.C}, partial_channels "
                              f"{self.partial_channels})")
        if self.early_stop == "sharpness" and not self.sharpness_every:
            raise ConfigError("early_stop sharpness needs sharpness_every >= 1 (the epochs between eigenvalue measurements)")
        return self

    @property
    def distills(self) -> bool:
        """True when the self-distillation term is active (not plain DARTS)."""
        return self.sd_weight > 0 and self.vote_count > 0

    @property
    def fixes(self) -> tuple[str, ...]:
        """The field's DARTS fixes this config turns on (``methods.md``): none is plain DARTS (or SD-DARTS)."""
        on = {"aux_skip": self.aux_skip > 0, "beta_decay": self.beta_decay > 0, "perturb": self.perturb != "none",
              "partial_channels": self.partial_channels > 1}
        return tuple(name for name, active in on.items() if active)


@dataclass
class EvalConfig(CommonConfig):
    """Training a derived architecture from scratch (DARTS' evaluation recipe by preset)."""

    epochs: int = param(600, "training epochs", ge=1, le=100_000)
    batch_size: int = param(96, "batch size per worker (the global batch is num_workers x this)", ge=1, le=65_536)
    C: int = param(36, "initial channels", ge=2, le=1024)
    layers: int = param(20, "cells in the network (nb201: cells per stage)", ge=1, le=200)
    lr_min: float = param(0.0, "final learning rate of the cosine schedule", ge=0)
    auxiliary_weight: float = param(0.4, "weight of the auxiliary head's loss (0 = no auxiliary head)", ge=0)
    cutout: int = param(16, "cutout square side in pixels (0 = off)", ge=0)
    drop_path: float = param(0.2, "final drop-path probability, ramped linearly from 0", ge=0, lt=1)
    holdout_portion: float = param(0.0, "0: train on the training split, report test_* on the test split; > 0: train on "
                                   "the rest and report val_* on the share a search with the same seed held out (proxy)", ge=0, lt=1)
