"""The README's comparison tables from a finished ``sddarts compare``: per variant (SD-DARTS
settings, the field's fixes, the random arm), for each metric the variant's mean, its paired
difference from DARTS with the 95% interval, and Holm's corrected p.

    python benchmarks/sd_table.py sqlite:///sd_variants/mlflow.db variants-collapse-demo
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import pandas as pd
from mlflow import MlflowClient

METRICS = ("proxy_acc", "hessian_eig", "discretization_gap", "derived_val_acc", "param_free_share", "skip_count",
           "val_acc")


def stats_of(uri: str, name: str) -> tuple[pd.DataFrame, float]:
    """The comparison's ``comparison_stats.csv`` and its wall time in seconds."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("sddarts").experiment_id
    (run,) = client.search_runs([exp], filter_string=f"tags.`sddarts.name` = '{name}' and tags.kind = 'compare'")
    text = client.download_artifacts(run.info.run_id, "comparison_stats.csv")
    wall = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else float("nan")
    return pd.read_csv(io.StringIO(open(text).read())), wall


def table(stats: pd.DataFrame) -> str:
    """Markdown: one row for DARTS (means), one per variant (mean, difference [CI], Holm p)."""
    metrics = [m for m in METRICS if m in set(stats["metric"])]
    head = "| variant | " + " | ".join(metrics) + " |\n|---|" + "---|" * len(metrics) + "\n"
    first = stats.drop_duplicates("metric").set_index("metric")
    rows = ["| DARTS | " + " | ".join(f"{first.loc[m, 'DARTS mean']:.3g}" for m in metrics) + " |"]
    for variant, group in stats.groupby("variant", sort=False):
        g = group.set_index("metric")
        cells = []
        for m in metrics:
            if m not in g.index:  # the random arm has proxy_acc only
                cells.append("-")
                continue
            r = g.loc[m]
            ci = "" if np.isnan(r["diff ci_low"]) else f" [{r['diff ci_low']:+.2g}, {r['diff ci_high']:+.2g}]"
            p = "" if np.isnan(r["p_holm"]) else f", p={r['p_holm']:.2g}" + ("**" if r["p_holm"] < 0.05 else "")
            cells.append(f"{r['variant mean']:.3g} ({r['diff']:+.2g}{ci}{p})")
        rows.append(f"| {variant} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tracking_uri")
    p.add_argument("names", nargs="+", help="compare run names")
    args = p.parse_args()
    for name in args.names:
        stats, wall = stats_of(args.tracking_uri, name)
        pairs = int(stats["pairs"].min())
        print(f"\n{name}: {pairs}-{int(stats['pairs'].max())} paired seeds, {len(stats)} tests corrected together "
              f"(Holm), wall {wall / 60:.0f} min\n")
        print(table(stats))


if __name__ == "__main__":
    main()
