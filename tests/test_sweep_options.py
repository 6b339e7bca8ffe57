"""A sweep's settings before anything runs: the default space holds the knobs that matter, TPE's
random start is sized to the budget, and ASHA prunes on a figure that separates trials."""

import pytest

from sddarts.platform.cli import build_parser
from sddarts.platform.flags import config_from_args
from sddarts.platform.space import DEFAULT_SPACE, space_of, to_distributions
from sddarts.platform.sweep import sweep_options, tpe_startup_trials
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig


def _options(*argv):
    args = build_parser().parse_args(["sweep", *argv])
    base = config_from_args(SearchConfig, SEARCH_PRESETS, args)
    return sweep_options(args, base, space_of(to_distributions(DEFAULT_SPACE, base)))


def test_default_space_holds_distill_on_and_voting():
    assert DEFAULT_SPACE["distill_on"]["choices"] == ["both", "weights", "arch"]
    assert DEFAULT_SPACE["voting"]["choices"] == ["soft", "hard"]


@pytest.mark.parametrize("trials, startup", [(1, 2), (8, 2), (12, 3), (40, 10)])
def test_tpe_starts_modelling_after_a_quarter_of_the_trials(trials, startup):
    assert tpe_startup_trials(trials) == startup
    assert _options("--trials", str(trials)).startup_trials == startup


def test_digits_sweeps_rank_by_a_proxy_retrain_and_prune_on_the_supernets_accuracy():
    opts = _options()
    assert opts.proxy_epochs == 3 and opts.prune_metric == "val_acc"


def test_without_a_proxy_asha_prunes_on_the_ranking_metric():
    opts = _options("--proxy-epochs", "0", "--metric", "hessian_eig")
    assert opts.proxy_epochs == 0 and opts.prune_metric == "hessian_eig" and opts.objective_mode == "min"
    assert _options("--preset", "cifar10-darts", "--data-dir", "/nonexistent").proxy_epochs == 0


def test_an_explicit_prune_metric_wins():
    assert _options("--prune-metric", "val_loss").prune_metric == "val_loss"
