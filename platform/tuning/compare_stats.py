"""The statistics of ``sddarts compare``: per variant and metric, each side's mean and 95%
interval over seeds, the paired t-test of variant - DARTS over the seeds both completed, and the
p-values corrected together (Holm) across every metric and variant the table reports."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from sddarts.platform.tuning.seed_stats import holm, mean_ci, paired_test

BASELINE = "DARTS"


def comparison_stats(table, metrics: Sequence[str], variants: Sequence[str]):
    """One row per (variant, metric) of ``table`` (columns ``variant``, ``seed`` and the metrics):
    DARTS' and the variant's mean, interval and count, the paired difference with its interval,
    t, p and Holm's ``p_holm`` over all rows."""
    import pandas as pd

    rows = []
    for variant in variants:
        for key in metrics:
            if key not in table or not table[key].notna().any():
                continue
            values = {v: {s: x for s, x in zip(g["seed"], g[key].astype(float)) if x == x}
                      for v, g in table.groupby("variant")}  # NaN: a figure the arm has not (random: search figures)
            base, mine = values.get(BASELINE, {}), values.get(variant, {})
            if not mine:
                continue
            row: dict[str, Any] = {"variant": variant, "metric": key}
            for side, data in (("DARTS", base), ("variant", mine)):
                mean, low, high = mean_ci(list(data.values()))
                row.update({f"{side} n": len(data), f"{side} mean": mean, f"{side} ci_low": low,
                            f"{side} ci_high": high})
            test = paired_test(base, mine)
            row.update({"diff": test["diff"], "diff ci_low": test["diff_low"], "diff ci_high": test["diff_high"],
                        "pairs": test["pairs"], "t": test["t"], "p": test["p"]})
            rows.append(row)
    stats = pd.DataFrame(rows)
    if len(stats):
        stats["p_holm"] = holm(list(stats["p"]))
    return stats


def _num(value: float, signed: bool = False) -> str:
    return "-" if np.isnan(value) else (f"{value:+.4g}" if signed else f"{value:.4g}")


def format_stats(stats) -> str:
    """The comparison as a fixed-width table: per variant and metric, mean [95% CI] (n) of DARTS
    and of the variant, the paired difference, t, p and Holm's corrected p."""
    def interval(r, side: str) -> str:
        if not r[f"{side} n"]:
            return "-"
        ci = "" if np.isnan(r[f"{side} ci_low"]) else f" [{r[f'{side} ci_low']:.4g}, {r[f'{side} ci_high']:.4g}]"
        return f"{r[f'{side} mean']:.4g}{ci} (n={r[f'{side} n']})"

    lines = [("variant", "metric", "DARTS", "variant", "variant - DARTS [95% CI]", "paired t-test", "Holm p")]
    for _, r in stats.iterrows():
        diff = _num(r["diff"], True) + ("" if np.isnan(r["diff ci_low"]) else
                                        f" [{r['diff ci_low']:+.4g}, {r['diff ci_high']:+.4g}]")
        test = "-" if np.isnan(r["p"]) else f"t={r['t']:.2f}, p={r['p']:.3g} ({r['pairs']} pairs)"
        lines.append((r["variant"], r["metric"], interval(r, "DARTS"), interval(r, "variant"), diff, test,
                      _num(r["p_holm"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  " + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines)


def metric_key(text: str) -> str:
    """A variant's name as part of an MLflow metric key: ``SD-DARTS`` -> ``sd_darts``."""
    return "".join(c if c.isalnum() else "_" for c in text.lower())


def parent_metrics(stats) -> dict[str, float]:
    """What the parent run logs: ``darts_<metric>``, ``<variant>_<metric>`` (means),
    ``paired_p_<variant>_<metric>`` and ``p_holm_<variant>_<metric>``; with one variant, also
    ``paired_p_<metric>``."""
    out: dict[str, float] = {}
    single = stats["variant"].nunique() == 1 if len(stats) else False
    for _, r in stats.iterrows():
        v, m = metric_key(r["variant"]), r["metric"]
        for key, value in ((f"darts_{m}", r["DARTS mean"]), (f"{v}_{m}", r["variant mean"]),
                           (f"paired_p_{v}_{m}", r["p"]), (f"p_holm_{v}_{m}", r["p_holm"])):
            if not np.isnan(value):
                out[key] = float(value)
        if single and not np.isnan(r["p"]):
            out[f"paired_p_{m}"] = float(r["p"])
    return out
