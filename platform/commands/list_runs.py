"""``sddarts runs``: the tracking store from a terminal, for users on a shell or a cluster head.

``sddarts runs`` lists searches, sweeps, comparisons, evaluations and proxy retrains, newest
first, with status, age, key metrics and genotype; ``sddarts runs RUN`` (an id or a name) shows
one run: config, per-epoch table, genotype, artifacts and children. Built on ``MlflowClient``.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
from typing import Any

from sddarts.platform.commands.shell import command_name
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.heartbeat import driver_gone
from sddarts.platform.tracking.store import check_tracking, resolve_tracking_uri, store_missing

KINDS = ("search", "sweep", "compare", "evaluate", "proxy")
STATUSES = ("RUNNING", "FINISHED", "KILLED", "FAILED")
KEY_METRICS = {  # what the list shows per kind
    "search": ("val_acc", "derived_val_acc", "discretization_gap", "hessian_eig", "proxy_acc"),
    "sweep": ("trials_completed", "trials_stopped", "trials_errors", "best_proxy_acc", "best_derived_val_acc"),
    "compare": ("darts_hessian_eig", "sd_darts_hessian_eig", "darts_discretization_gap", "sd_darts_discretization_gap"),
    "evaluate": ("test_acc", "params_m"),
    "proxy": ("val_acc",),
}
EPOCH_COLUMNS = ("train_ce", "train_loss", "train_acc", "val_acc", "test_acc", "derived_val_acc", "discretization_gap",
                 "hessian_eig", "sd_loss", "alpha_entropy", "epoch_time_s")


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list the tracking store's runs, or show one (config, epochs, genotype, artifacts)")
    p.add_argument("run", nargs="?", default=None, help="a run id or name to show (default: list runs)")
    p.add_argument("--kind", choices=KINDS, default=None, help="only runs of this kind")
    p.add_argument("--sweep", default=None, help="only the trials of this sweep (its name)")
    p.add_argument("--status", choices=STATUSES, default=None, help="only runs with this status")
    p.add_argument("--limit", type=int, default=30, help="list at most this many runs (default 30)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def age(ms: int | None, now: float | None = None) -> str:
    """'42s ago', '5m ago', '3h ago', '2d ago'."""
    if not ms:
        return "?"
    seconds = max(0, (now or time.time()) - ms / 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def summary(run) -> dict[str, Any]:
    """One run as the list shows it."""
    tags, metrics = run.data.tags, run.data.metrics
    kind = tags.get("kind", "?")
    gone = driver_gone(run)
    return {"run_id": run.info.run_id, "name": tags.get(runs.NAME_TAG, run.info.run_name), "kind": kind,
            "status": "DRIVER-GONE" if gone else run.info.status, "started": run.info.start_time,
            "age": age(run.info.start_time), "driver_silent_s": int(gone) if gone else None,
            "metrics": {k: metrics[k] for k in KEY_METRICS.get(kind, ()) if k in metrics},
            "genotype": tags.get("genotype") or tags.get("best_genotype", ""),
            "parent_run_id": tags.get("mlflow.parentRunId", "")}


def list_runs(uri: str, experiment: str, kind: str | None = None, sweep: str | None = None, status: str | None = None,
              limit: int = 30) -> list[dict[str, Any]]:
    """The experiment's runs, newest first, filtered by kind, sweep name and status."""
    client = runs.client(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    filters = []
    if kind:
        filters.append(f"tags.kind = '{kind}'")
    if sweep:
        parent = runs.find_run(uri, exp.experiment_id, sweep)
        if parent is None:
            return []
        filters.append(f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    if status:
        filters.append(f"attributes.status = '{status}'")
    found = client.search_runs([exp.experiment_id], filter_string=" and ".join(filters), max_results=limit,
                               order_by=["attributes.start_time DESC"])
    return [summary(r) for r in found]


def artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for a in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, a.path) if a.is_dir else [a.path]
    return out


def details(uri: str, run) -> dict[str, Any]:
    """One run in full: its summary, config, per-epoch metrics, genotype, artifacts and children."""
    client = runs.client(uri)
    run_id = run.info.run_id
    epochs: dict[int, dict[str, float]] = {}
    for key in EPOCH_COLUMNS:
        if key in run.data.metrics:
            for m in client.get_metric_history(run_id, key):
                epochs.setdefault(m.step, {})[key] = m.value
    children = client.search_runs([run.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{run_id}'",
                                  order_by=["attributes.start_time ASC"])
    return {**summary(run), "params": dict(run.data.params), "tags": {k: v for k, v in run.data.tags.items()
                                                                      if not k.startswith("mlflow.")},
            "epochs": [{"epoch": e, **epochs[e]} for e in sorted(epochs)], "artifacts": artifacts(client, run_id),
            "children": [summary(c) for c in children]}


def _metrics_text(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def print_list(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no runs")
        return
    header = f"{'started':>9}  {'kind':<8} {'status':<11} {'name':<28} {'run id':<32}  metrics / genotype"
    print(header)
    for r in rows:
        print(f"{r['age']:>9}  {r['kind']:<8} {r['status']:<11} {r['name'][:28]:<28} {r['run_id']:<32}  "
              f"{_metrics_text(r['metrics'])}")
        if r["genotype"]:
            print(f"{'':>9}  {'':<8} {'':<11} {'':<28} {'':<32}  {r['genotype']}")


def print_details(d: dict[str, Any]) -> None:
    print(f"{d['kind']} run {d['name']!r} ({d['run_id']}): {d['status']}, started {d['age']}"
          + (f", child of {d['parent_run_id']}" if d["parent_run_id"] else ""))
    if d["driver_silent_s"]:
        print(f"  its driver stopped {d['driver_silent_s']}s ago without ending it (killed?); "
              f"continue it with: {command_name()} {d['kind']} --resume '{d['name']}' (same --storage-path)")
    if d["metrics"]:
        print(f"  {_metrics_text(d['metrics'])}")
    if d["params"]:
        print("config:")
        print(textwrap.fill(", ".join(f"{k}={v}" for k, v in sorted(d["params"].items())), width=100,
                            initial_indent="  ", subsequent_indent="  "))
    if d["epochs"]:
        cols = [c for c in EPOCH_COLUMNS if any(c in e for e in d["epochs"])]
        print("epochs:")
        print("  " + f"{'epoch':>5} " + " ".join(f"{c:>14}" for c in cols))
        for e in d["epochs"]:
            print("  " + f"{e['epoch']:>5} " + " ".join(f"{e[c]:>14.4g}" if c in e else f"{'':>14}" for c in cols))
    if d["genotype"]:
        print(f"genotype: {d['genotype']}")
    print("artifacts: " + (", ".join(d["artifacts"]) if d["artifacts"] else "none"))
    if d["children"]:
        print(f"children ({len(d['children'])}):")
        for c in d["children"]:
            print(f"  {c['kind']:<8} {c['status']:<8} {c['name']:<28} {c['run_id']}  {_metrics_text(c['metrics'])}")


def cmd_runs(args: argparse.Namespace) -> int:
    from sddarts.search_spaces.errors import ConfigError

    if args.limit < 1:
        raise ConfigError(f"limit must be >= 1 (got {args.limit})")
    uri = resolve_tracking_uri(args.tracking_uri or None)
    check_tracking(uri)
    if store_missing(uri):
        raise ConfigError(f"tracking_uri {uri} has no store yet (run a search first, or pass --tracking-uri)")
    if args.run:
        run = runs.lookup(uri, args.experiment, args.run)
        if run is None:
            raise ConfigError(f"run: no run with id or name {args.run!r} in experiment {args.experiment!r} of {uri}")
        d = details(uri, run)
        if args.json:
            print(json.dumps(d, indent=2, default=str))
        else:
            print_details(d)
        return 0
    rows = list_runs(uri, args.experiment, args.kind, args.sweep, args.status, args.limit)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print_list(rows)
    return 0
