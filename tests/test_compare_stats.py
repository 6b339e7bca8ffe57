"""The comparison's statistics without Ray: variants parsed from flags, Holm's correction, and the
table of paired tests against DARTS."""

import math

import pandas as pd
import pytest

from sddarts.platform.tuning.compare import parse_variants
from sddarts.platform.tuning.compare_stats import comparison_stats, parent_metrics
from sddarts.platform.tuning.seed_stats import holm
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import SearchConfig


def test_holm_matches_a_hand_computation():
    # sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5); NaN left out
    assert holm([0.03, 0.5, float("nan"), 0.01, 0.02]) == pytest.approx([0.06, 0.5, math.nan, 0.04, 0.06], nan_ok=True)
    assert holm([0.4, 0.3]) == pytest.approx([0.6, 0.6])  # step-down keeps the order monotone, capped at 1


def test_no_variant_is_one_sd_darts_variant_of_the_config_itself():
    assert parse_variants([], SearchConfig()) == {"SD-DARTS": {}}


def test_variants_are_config_overrides_checked_like_flags():
    got = parse_variants(["w=--distill-on weights", "last=--teacher-interval 1 --vote-count 1"], SearchConfig())
    assert got == {"w": {"distill_on": "weights"}, "last": {"teacher_interval": 1, "vote_count": 1}}


@pytest.mark.parametrize("spec, words", [
    ("noequals", "NAME='FLAGS'"),
    ("DARTS=--sd-weight 2", "not DARTS"),
    ("x=--bogus 1", "unknown flag(s) --bogus"),
    ("x=--distill-on nowhere", "variant x: distill_on must be one of both, weights, arch"),
    ("x=--sd-weight 0", "variant x: is plain DARTS"),
])
def test_bad_variants_are_one_line_naming_the_variant(spec, words):
    with pytest.raises(ConfigError) as info:
        parse_variants([spec], SearchConfig())
    assert words in str(info.value) and "\n" not in str(info.value)


def test_comparison_stats_pair_each_variant_with_darts_over_shared_seeds():
    table = pd.DataFrame([
        {"variant": "DARTS", "seed": 0, "m": 1.0}, {"variant": "DARTS", "seed": 1, "m": 2.0},
        {"variant": "DARTS", "seed": 2, "m": 4.0},
        {"variant": "a", "seed": 0, "m": 2.0}, {"variant": "a", "seed": 1, "m": 2.5}, {"variant": "a", "seed": 2, "m": 6.0},
        {"variant": "b", "seed": 0, "m": 1.0}, {"variant": "b", "seed": 2, "m": 4.0},  # seed 1 failed
    ])
    stats = comparison_stats(table, ["m"], ["a", "b"]).set_index("variant")
    assert stats.loc["a", "pairs"] == 3 and stats.loc["a", "diff"] == pytest.approx((1.0 + 0.5 + 2.0) / 3)
    assert stats.loc["b", "pairs"] == 2 and stats.loc["b", "diff"] == 0.0 and math.isnan(stats.loc["b", "p"])
    assert stats.loc["a", "p_holm"] == pytest.approx(stats.loc["a", "p"])  # the only finite p: m = 1
    logged = parent_metrics(stats.reset_index())
    assert logged["a_m"] == pytest.approx(3.5) and logged["darts_m"] == pytest.approx(7 / 3)
    assert "p_holm_a_m" in logged and "paired_p_m" not in logged  # two variants: per-variant keys only
