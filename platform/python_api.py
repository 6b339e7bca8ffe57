"""sddarts from Python: ``search``, ``sweep``, ``evaluate`` and ``compare``, re-exported as
``sddarts.search`` etc.

Each function takes a config (a ``SearchConfig``/``EvalConfig``, a dict of its fields, or
nothing), a preset by name and config fields as keyword overrides (``epochs=3``), plus the
command's options (``name``, ``tracking_uri``, ``storage_path``, ``address``, ...). An option left
at ``None`` keeps the CLI's default: the functions fill the CLI's own parsed flags and run the
commands' own path (``*_from_args``), so the checks, defaults and records are the CLI's. Bad input
raises ``SddartsError`` with the CLI's one line, before Ray or MLflow start. Ray is joined or
started as ``ray.init`` would, and left running for the next call.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator

from sddarts.trainables.config import CommonConfig, EvalConfig, SearchConfig


class SddartsError(Exception):
    """A call that could not run; the message is the CLI's one line (``exit_code``: the CLI's)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class SearchResult:
    """A finished search: its MLflow run, the derived genotype, the last epoch's figures and
    ``history``, one dict of figures per epoch (``epoch`` included)."""

    name: str
    run_id: str
    experiment_id: str
    genotype: Any
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class SweepResult:
    """A finished sweep: one row per trial (its knobs, status, figures, MLflow run id) and the best
    completed trial (``best``: its config; None when no trial completed)."""

    name: str
    parent_run_id: str
    experiment_id: str
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_run_id: str | None
    best_value: float | None
    ranked_by: str
    genotype: str | None


@dataclass
class EvalResult:
    """A finished evaluation: its run, the registered model's URI (raw images in, see
    ``sddarts export``) and the final figures (``test_acc``, ``params_m``, ...)."""

    name: str
    run_id: str
    model_uri: str | None
    metrics: dict[str, Any]


@dataclass
class CompareResult:
    """A finished comparison: the paired statistics (one row per variant and metric) and the
    final figures of every completed trial."""

    name: str
    parent_run_id: str
    experiment_id: str
    stats: list[dict[str, Any]]
    rows: list[dict[str, Any]]


@contextlib.contextmanager
def one_line() -> Iterator[None]:
    """Turns any error of a command into ``SddartsError`` carrying the CLI's line."""
    from sddarts.platform.cli import error_line

    try:
        yield
    except SddartsError:
        raise
    except SystemExit as exc:  # argparse: the parser's own one line went to stderr
        raise SddartsError(f"bad arguments (exit {exc.code})") from None
    except Exception as exc:
        code, line = error_line(exc)
        raise SddartsError(line, code) from exc


def command_args(command: str, argv: list[str], cls: type[CommonConfig], config: CommonConfig | dict | None,
                 preset: str | None, overrides: dict[str, Any], options: dict[str, Any]) -> argparse.Namespace:
    """The CLI's parsed flags for ``command argv``, with ``preset``, the config's fields and the
    options set (``None``: the CLI's default)."""
    from sddarts.platform.cli import build_parser

    args = build_parser().parse_args([command, *argv])
    names = {f.name for f in dataclasses.fields(cls)}
    values = config.to_dict() if isinstance(config, CommonConfig) else dict(config or {})
    values.update(overrides)
    unknown = sorted(set(values) - names)
    if unknown:
        from sddarts.trainables.config import ConfigError

        raise ConfigError(f"unknown config field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(names))}")
    for key, value in {**options, "preset": preset}.items():
        if value is not None:
            setattr(args, key, value)
    for key, value in values.items():
        setattr(args, key, value)
    return args


def history_of(tracking_uri: str, run_id: str) -> list[dict[str, float]]:
    """Every metric of a run by epoch (MLflow's step), oldest first."""
    from sddarts.platform import runs

    client = runs.client(tracking_uri)
    by_step: dict[int, dict[str, float]] = {}
    for key in client.get_run(run_id).data.metrics:
        for m in client.get_metric_history(run_id, key):
            by_step.setdefault(m.step, {"epoch": m.step})[key] = m.value
    return [by_step[step] for step in sorted(by_step)]


def search(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None,
           name: str | None = None, tracking_uri: str | None = None, storage_path: str | None = None,
           experiment: str | None = None, address: str | None = None, resume: bool = False,
           **overrides: Any) -> SearchResult:
    """Runs one SD-DARTS search (``sddarts search``): a Ray Train job in an MLflow run.

    Args:
        config: the search's fields; default ``preset``'s (the CLI's default preset, ``digits-demo``).
        preset: a search preset's name, under ``config`` and ``overrides``.
        name: the run's name (default timestamped); with ``resume=True``, the run to continue.
        tracking_uri, storage_path, experiment, address: as the CLI's flags of the same names.
        overrides: config fields (``epochs=3``, ``sd_weight=0.5``).

    Returns:
        A ``SearchResult``. Raises ``SddartsError`` (the CLI's line) on bad input or a failed run.
    """
    from sddarts.platform.search import search_from_args

    with one_line():
        options = {"tracking_uri": tracking_uri, "storage_path": storage_path, "experiment": experiment,
                   "address": address, "name": None if resume else name, "resume": name if resume else None}
        args = command_args("search", [], SearchConfig, config, preset, overrides, options)
        opts, out = search_from_args(args)
        return SearchResult(out.name, out.run_id, out.experiment_id, out.genotype, out.metrics,
                            history_of(opts.tracking_uri, out.run_id))


def sweep(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None, trials: int | None = None,
          space_file: str | None = None, metric: str | None = None, proxy_epochs: int | None = None,
          asha: bool | None = None, baseline: bool | None = None, max_concurrent: int | None = None,
          name: str | None = None, tracking_uri: str | None = None, storage_path: str | None = None,
          experiment: str | None = None, address: str | None = None, **overrides: Any) -> SweepResult:
    """Runs a Ray Tune + Optuna sweep of searches (``sddarts sweep``) under one MLflow parent run.

    Args:
        config, preset, overrides: the base search, as for ``search``.
        trials, space_file, metric, proxy_epochs, asha, baseline, max_concurrent: as the CLI's
            ``--trials``, ``--space-file`` (a YAML space), ``--metric``, ``--proxy-epochs``,
            ``--asha/--no-asha``, ``--baseline``, ``--max-concurrent``; ``None`` keeps its default.
        name, tracking_uri, storage_path, experiment, address: as for ``search``.

    Returns:
        A ``SweepResult`` with one row per trial.
    """
    from sddarts.platform.sweep import sweep_from_args

    with one_line():
        options = {"trials": trials, "space_file": space_file, "metric": metric, "proxy_epochs": proxy_epochs,
                   "asha": asha, "baseline": baseline, "max_concurrent": max_concurrent, "name": name,
                   "tracking_uri": tracking_uri, "storage_path": storage_path, "experiment": experiment,
                   "address": address}
        args = command_args("sweep", [], SearchConfig, config, preset, overrides, options)
        ropts, summary, _ = sweep_from_args(args)
        return SweepResult(ropts.name, summary["parent_run_id"], summary["experiment_id"], summary["rows"],
                           summary["best"], summary.get("best_run_id"), summary.get("best_value"),
                           summary["ranked_by"], summary.get("genotype"))


def evaluate(genotype: Any, config: EvalConfig | dict[str, Any] | None = None, *, preset: str | None = None,
             name: str | None = None, tracking_uri: str | None = None, storage_path: str | None = None,
             experiment: str | None = None, address: str | None = None, **overrides: Any) -> EvalResult:
    """Retrains a genotype from scratch and registers the model (``sddarts evaluate``).

    Args:
        genotype: a ``SearchResult`` (its run is the evaluation's parent), a genotype object, or
            what ``--genotype``/``--search-run`` take: a built-in name, a JSON file, a
            NAS-Bench-201 string, a search run's id or name.
        config, preset, overrides: the evaluation's ``EvalConfig`` fields (default preset ``digits-demo``).
        name, tracking_uri, storage_path, experiment, address: as for ``search``.
    """
    from sddarts.platform.evaluate import evaluate_from_args
    from sddarts.platform.registry import GenotypeSource

    with one_line():
        source = None
        if isinstance(genotype, SearchResult):
            argv = ["--search-run", genotype.run_id]
        elif isinstance(genotype, str):
            argv = ["--genotype", genotype]
        else:
            argv, source = ["--genotype", "python"], GenotypeSource(genotype, None, "python")
        options = {"name": name, "tracking_uri": tracking_uri, "storage_path": storage_path,
                   "experiment": experiment, "address": address}
        args = command_args("evaluate", argv, EvalConfig, config, preset, overrides, options)
        opts, out = evaluate_from_args(args, source)
        uri = f"models:/{out['model']}/{out['version']}" if out.get("version") else None
        return EvalResult(opts.name, out["run_id"], uri, out)


def compare(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None,
            seeds: int | None = None, variants: dict[str, str] | None = None, proxy_epochs: int | None = None,
            name: str | None = None, tracking_uri: str | None = None, storage_path: str | None = None,
            experiment: str | None = None, address: str | None = None, **overrides: Any) -> CompareResult:
    """DARTS against SD-DARTS variants over paired seeds (``sddarts compare``).

    Args:
        variants: ``{name: flags}`` as ``--variant NAME='FLAGS'`` (``{"w-only": "--distill-on weights"}``);
            default: the config's own SD-DARTS.
        seeds, proxy_epochs: as ``--seeds``, ``--proxy-epochs``.
        config, preset, overrides, name, tracking_uri, storage_path, experiment, address: as for ``search``.
    """
    from sddarts.platform.compare import compare_from_args

    with one_line():
        argv = [f"--variant={k}={v}" for k, v in (variants or {}).items()]
        options = {"seeds": seeds, "proxy_epochs": proxy_epochs, "name": name, "tracking_uri": tracking_uri,
                   "storage_path": storage_path, "experiment": experiment, "address": address}
        args = command_args("compare", argv, SearchConfig, config, preset, overrides, options)
        ropts, out = compare_from_args(args)
        stats = out["stats"]
        return CompareResult(ropts.name, out["parent_run_id"], out["experiment_id"],
                             stats.to_dict("records") if hasattr(stats, "to_dict") else list(stats),
                             out["table"].to_dict("records") if hasattr(out["table"], "to_dict") else list(out["table"]))
