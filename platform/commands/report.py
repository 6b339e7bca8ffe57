"""What the commands print when a job ends: its headline figures, what they mean, and where to
see the run. Every hint is a command that runs as printed (``shell.command_name``)."""

from __future__ import annotations

from typing import Any

from sddarts.platform.commands.shell import command_name
from sddarts.platform.tracking.links import ui_link


def run_url(uri: str, exp_id: str, run_id: str) -> str:
    """Where to see a run: its UI page for a server, else the command that serves the UI."""
    if uri.startswith(("http://", "https://")):
        return ui_link(uri, exp_id, run_id)
    return f"{command_name()} ui --tracking-uri {uri}   then open {ui_link('http://127.0.0.1:5000', exp_id, run_id)}"


def search_finished(out, uri: str) -> None:
    """A search's figures, what they mean, its genotype and its run."""
    m = out.metrics
    print(f"\nsearch {out.name} finished: val_acc={m.get('val_acc', float('nan')):.2f}% "
          f"derived_val_acc={m.get('derived_val_acc', float('nan')):.2f}% (held-out split)")
    print("  val_acc: the supernet itself; derived_val_acc: the supernet with one-hot op weights, not retrained "
          "(near chance on small data). The architecture itself is measured by training it: "
          f"{command_name()} evaluate --search-run '{out.name}' (a sweep's proxy_acc does that briefly)")
    print(f"genotype: {out.genotype.short() if out.genotype else '?'}")
    if out.genotype:
        print(out.genotype.to_json(indent=None))
    print(f"MLflow run id: {out.run_id}")
    print(f"browse: {run_url(uri, out.experiment_id, out.run_id)}")


def size(found: dict[str, Any]) -> None:
    print(f"genotype ({found['space']}): {found['genotype']}")
    print(f"params (without auxiliary head): {found['params']:,} ({found['params_m']:.2f}M)")
    print(f"FLOPs per image: {found['flops']:,} ({found['flops'] / 1e6:.1f}M; MACs {found['flops'] / 2e6:.1f}M)")


def evaluation_finished(out, uri: str) -> None:
    """An evaluation's test accuracy, size, registered model and run."""
    m = out.metrics
    print(f"\ntest accuracy: {m['test_acc']:.2f}%")
    size(m)
    print(f"registered: {out.model_uri} (its LoggedModel: {m.get('logged_model_uri', '?')})")
    print(f"MLflow run id: {out.run_id}")
    print(f"browse: {run_url(uri, m['experiment_id'], out.run_id)}")


def sweep_finished(out, uri: str) -> bool:
    """A sweep's counts, best trial and run; False when no trial completed."""
    c = out.counts
    print(f"\nsweep {out.name} finished in {out.wall_s:.0f}s: {c['trials']} trials ({c['completed']} completed, "
          f"{c['stopped']} stopped by ASHA, {c['errors']} errors), up to {c['concurrency']} at once")
    if out.best is None:
        return False
    print(f"best {out.ranked_by} = {out.best_value:.4g} with { {k: out.best[k] for k in out.knobs} }")
    print(f"best genotype: {out.genotype}")
    print(f"best search run: {out.best_run_id}")
    print(f"MLflow parent run id: {out.parent_run_id}")
    print(f"browse: {run_url(uri, out.experiment_id, out.parent_run_id)}")
    if out.evaluated is not None:
        evaluation_finished(out.evaluated, uri)
        print(f"champion: models:/{out.evaluated.metrics['model']}@champion")
    return True


def compare_finished(out, uri: str) -> None:
    print(f"\ncompare {out.name} finished in {out.wall_s:.0f}s ({out.completed} of {out.trials} trials completed; "
          f"failed or stopped ones are left out). Final epoch, mean [95% CI] over seeds, the paired t-test of each "
          f"variant - DARTS over the seeds both completed, and its p corrected across all {len(out.stats)} tests "
          "(Holm):")
    print(out.stats_text)
    print(f"MLflow parent run id: {out.parent_run_id}")
    print(f"browse: {run_url(uri, out.experiment_id, out.parent_run_id)}")


def power_finished(out) -> None:
    s = out.stats
    print(f"\npower {out.name} ({out.wall_s:.0f}s): proxy_acc across {s['n_genotypes']} genotypes "
          f"{s['mean_genotypes']:.1f} (sd {s['sd_genotypes']:.2f}, range {s['min_genotypes']:.1f}-"
          f"{s['max_genotypes']:.1f}); one genotype across {s['n_seeds']} seeds sd {s['sd_seeds']:.2f}; ratio "
          f"{s['sd_ratio']:.2f}, F = {s['f']:.2f}, p = {s['p_f']:.3g}: "
          + ("this testbed ranks architectures" if s["p_f"] < 0.05 else
             "this testbed cannot tell architectures apart from retrain noise"))
    print(f"MLflow parent run id: {out.parent_run_id}")
