"""The options of the commands, as typed dataclasses: the single source of their defaults, help
and ranges. The CLI's flags are generated from them (``commands/flags.py``), and the Python API
takes the same fields as keyword arguments; ``check()`` refuses a bad value with one line naming
the field and what it accepts, before Ray or MLflow start."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from sddarts.trainables.config import check_fields, param

DEFAULT_EXPERIMENT = "sddarts"
TRIAL_DEFAULTS = {"num_workers": 1}  # a sweep's, a comparison's or a power run's search: one worker per trial
# per-epoch metrics ASHA can prune on, and which way is better (of the benchmark's, the valid figure only)
METRICS = {"derived_val_acc": "max", "val_acc": "max", "val_loss": "min", "discretization_gap": "min",
           "hessian_eig": "min", "alpha_entropy": "min", "bench_cifar10_valid": "max"}


class Checked:
    """``check()``: every field against its ``param`` range (a ConfigError naming the field)."""

    def check(self):
        check_fields(self)
        return self


@dataclass
class RunOptions(Checked):
    """Where a run goes and what it is called; not part of the search config itself."""

    name: str = param("", "run name (default: timestamped); the Train run and MLflow run share it")
    tracking_uri: str = param("", "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)")
    experiment: str = param(DEFAULT_EXPERIMENT, "MLflow experiment name")
    storage_path: str = param("sddarts_runs", "where Ray keeps checkpoints (a shared path or URI on a cluster)")
    address: str = param("", "Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    resume: bool = param(False, "continue the run called name from its last checkpoint, in the same MLflow run",
                         flag=False)  # the CLI's --resume NAME
    system_metrics: bool = param(True, "log MLflow's system metrics (CPU, memory; GPU where there is one) for the "
                                 "run; --no-system-metrics turns them off")
    system_metrics_interval: float = param(10.0, "seconds between two samples of the system metrics", gt=0)
    progress_interval: float = param(30.0, "seconds between progress lines inside an epoch, with its ETA (0: none); "
                                     "an epoch over a minute also gets one at each tenth", ge=0)
    placement_group_cleaner: bool = param(
        True, "start Ray Train's PlacementGroupCleaner actor, which frees the run's workers if its controller dies "
        "while this process lives on; the CLI leaves it out (its process, and so its Ray job, ends with the run, "
        "and Ray frees a finished job's placement groups itself)", flag=False)


    def named(self, prefix: str) -> "RunOptions":
        """These options with a name: the given one, else ``PREFIX-<timestamp>``."""
        return self if self.name else dataclasses.replace(self, name=time.strftime(f"{prefix}-%Y%m%d-%H%M%S"))


@dataclass
class ProxyOptions(Checked):
    """The proxy retrain of each searched (or drawn) genotype: what ranks it (``proxy_acc``)."""

    proxy_epochs: int | None = param(None, "retrain each genotype from scratch for N epochs and report its held-out "
                                     "accuracy, proxy_acc (0: off; default: the command's)", ge=0)
    proxy_C: int = param(0, "proxy network channels (0: the search's C)", ge=0)
    proxy_layers: int = param(0, "proxy network cells (0: the search's layers)", ge=0)


@dataclass
class SweepOptions(ProxyOptions):
    """``sddarts sweep``: Ray Tune + Optuna's TPE + ASHA, one search per trial."""

    trials: int = param(8, "number of trials (searches)", ge=1)
    space_file: str = param("", "YAML/JSON file of distributions per config field (default: sd_weight, "
                            "teacher_interval, vote_count, temperature, distill_on, voting)")
    metric: str = param("derived_val_acc", "without a proxy retrain: what ranks the trials (final epoch) and what "
                        "ASHA prunes on", choices=METRICS)
    prune_metric: str = param("", "per-epoch metric ASHA prunes on ('': metric; with a proxy retrain val_acc)",
                              choices=("", *METRICS))
    asha: bool = param(True, "ASHA stops weak trials early (--no-asha: run every trial to the end)")
    grace_period: int = param(0, "ASHA: epochs before a trial can be stopped (0: half the epochs)", ge=0)
    reduction_factor: int = param(2, "ASHA: keep 1/rf of trials at each rung", ge=2)
    max_concurrent: int = param(0, "cap on trials at once (0: what the cluster holds)", ge=0)
    baseline: bool = param(False, "evaluate plain DARTS first (points_to_evaluate)")
    evaluate_best: bool = param(False, "retrain the best genotype from scratch at the end, register it and give it "
                                "the alias champion")


@dataclass
class CompareOptions(ProxyOptions):
    """``sddarts compare``: plain DARTS against variants and random genotypes, over paired seeds."""

    seeds: int = param(5, "seeds 0..K-1 for each variant", ge=1)
    variants: list[str] = param([], "variants as NAME=FLAGS: config flags over the command's config, e.g. "
                                "w-only='--distill-on weights' (default: one variant, SD-DARTS, the config itself)",
                                flag=False)
    random: int = param(0, "the random-sampling arm: N genotypes drawn uniformly per seed, each retrained with the "
                        "proxy recipe; rows random (their mean) and random-best (their best) (needs --proxy-epochs)",
                        ge=0)


@dataclass
class PowerOptions(ProxyOptions):
    """``sddarts power``: proxy_acc's spread across random genotypes against one genotype's across seeds."""

    genotypes: int = param(20, "random genotypes retrained at seed 0", ge=2)
    retrain_seeds: int = param(5, "seeds the first genotype is retrained at", ge=2)
