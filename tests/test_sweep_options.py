"""A sweep's settings before anything runs: the default space holds the knobs that matter, TPE's
random start is sized to the budget, and ASHA prunes on a figure that separates trials."""

import pytest

from sddarts.platform.commands.flags import given
from sddarts.platform.commands.parser import build_parser
from sddarts.platform.options import TRIAL_DEFAULTS, SweepOptions
from sddarts.platform.preflight import config_from
from sddarts.platform.tuning.sweep import sweep_plan, tpe_startup_trials
from sddarts.platform.tuning.sweep_space import DEFAULT_SPACE, space_of, to_distributions
from sddarts.trainables.config import SEARCH_PRESETS, SearchConfig


def _options(*argv):
    """The plan of a sweep given ``argv``, parsed as the CLI parses it."""
    args = build_parser().parse_args(["sweep", *argv])
    base = config_from(SearchConfig, SEARCH_PRESETS, args.preset, given(SearchConfig, args), TRIAL_DEFAULTS)
    options = SweepOptions(**given(SweepOptions, args))
    return sweep_plan(options, base, space_of(to_distributions(DEFAULT_SPACE, base)), args.preset)


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
