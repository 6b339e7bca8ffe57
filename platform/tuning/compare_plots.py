"""The pictures of ``sddarts compare``: curves per epoch and final intervals, DARTS beside every variant."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

CURVES = ("hessian_eig", "param_free_share", "discretization_gap")


def curves_figure(histories: dict[str, list]):
    """Mean and spread (min..max over seeds) of each curve over epochs, one line per variant."""
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.5), squeeze=False)
    for ax, key in zip(axes[0], CURVES):
        for variant, frames in histories.items():
            rows = [f[["epoch", key]].dropna() for f in frames if key in f.columns]
            if not rows:
                continue
            epochs = sorted(set().union(*[set(r["epoch"]) for r in rows]))
            values = np.array([[float(r.loc[r["epoch"] == e, key].mean()) if (r["epoch"] == e).any() else np.nan
                                for e in epochs] for r in rows])
            ax.plot(epochs, np.nanmean(values, axis=0), "o-", label=f"{variant} (mean of {len(rows)})")
            ax.fill_between(epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2)
        ax.set(xlabel="epoch", title=key)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def intervals_figure(stats, baseline: str = "DARTS"):
    """One panel per metric: DARTS' and each variant's final mean with its 95% interval, titled
    with the smallest Holm-corrected p of that metric."""
    metrics = list(dict.fromkeys(stats["metric"]))
    variants = list(dict.fromkeys(stats["variant"]))
    labels = [baseline, *variants]
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(2.6, 0.8 * len(labels)) * len(metrics), 3.4), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics):
        rows = stats[stats["metric"] == metric]
        points = [("DARTS", rows.iloc[0])] + [("variant", r) for _, r in rows.iterrows()]
        for x, (side, r) in enumerate(points):
            mean, low, high = r[f"{side} mean"], r[f"{side} ci_low"], r[f"{side} ci_high"]
            if np.isnan(mean):
                continue
            err = None if np.isnan(low) else [[mean - low], [high - mean]]
            ax.errorbar([x], [mean], yerr=err, fmt="o", color=colors(x % 10), capsize=6, lw=2)
        p = rows["p_holm"].min()
        ax.set(xticks=range(len(labels)), xlim=(-0.6, len(labels) - 0.4),
               title=f"{metric}" + ("" if np.isnan(p) else f"\nmin Holm p={p:.2g}"))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    fig.suptitle("final epoch: mean and 95% confidence interval over seeds", fontsize=9)
    fig.tight_layout()
    return fig
