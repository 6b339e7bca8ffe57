"""sddarts: Self-Distillation DARTS on Ray, tracked in MLflow (this is the ``sddarts`` package).

From Python, the same typed calls the ``sddarts`` commands make::

    import sddarts
    found = sddarts.search(preset="digits-demo", epochs=2)
    found.genotype, found.metrics["derived_val_acc"], found.history
    model = sddarts.evaluate(found, epochs=2)          # model.model_uri: models:/NAME/VERSION
    rows = sddarts.sweep(preset="digits-demo", trials=2).rows

Each function takes a config (a ``SearchConfig``/``EvalConfig``, a dict of its fields, or
nothing), a preset by name and config fields as keyword overrides (``epochs=3``), plus the run's
options (``RunOptions``' fields: ``name``, ``tracking_uri``, ``storage_path``, ``address``, ...)
and the command's own (``SweepOptions``, ``CompareOptions``). Bad input raises a ``UserError``
(an ``SddartsError``, ``exit_code`` 2) with the CLI's one line, before Ray or MLflow start; a
failed run raises ``RunFailedError`` (``exit_code`` 1). Ray is joined or started as ``ray.init``
would, and left running for the next call. ``sddarts.Searcher`` runs the search on one process,
without Ray or MLflow. Everything loads on first use, so ``import sddarts.search_spaces`` stays
pure torch.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from sddarts.platform.jobs import EvalResult, SearchResult
    from sddarts.platform.tuning.compare import CompareResult
    from sddarts.platform.tuning.sweep import SweepResult
    from sddarts.trainables.config import EvalConfig, SearchConfig

_HERE = Path(__file__).resolve().parent
if _HERE.name == "python_api":  # a checkout (editable install): the layers live at its root
    __path__.append(str(_HERE.parents[1]))

# Nothing is imported until it is used: a Ray worker's setup hook imports this package first, and
# torch imported there would set its threads before Ray sets OMP_NUM_THREADS for the worker.
_LAZY = {"SddartsError": "sddarts.search_spaces.errors", "UserError": "sddarts.search_spaces.errors",
         "RunFailedError": "sddarts.search_spaces.errors", "Searcher": "sddarts.trainables.sd_darts.searcher", "SearchConfig": "sddarts.trainables.config",
         "EvalConfig": "sddarts.trainables.config", "RunOptions": "sddarts.platform.options",
         "SweepOptions": "sddarts.platform.options", "CompareOptions": "sddarts.platform.options",
         "SearchResult": "sddarts.platform.jobs", "EvalResult": "sddarts.platform.jobs",
         "SweepResult": "sddarts.platform.tuning.sweep", "CompareResult": "sddarts.platform.tuning.compare"}
__all__ = sorted(["search", "sweep", "evaluate", "compare", "load_model", *_LAZY])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sddarts' has no attribute {name!r}")


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """Bad input raises as it is (a ``UserError``); any other error of a run becomes
    ``RunFailedError`` carrying the CLI's line."""
    from sddarts.platform.commands.error_line import error_line, root_cause
    from sddarts.search_spaces.errors import RunFailedError, SddartsError

    try:
        yield
    except SddartsError:
        raise
    except Exception as exc:
        cause = root_cause(exc)
        if isinstance(cause, SddartsError):
            raise cause from exc
        code, line = error_line(exc)
        raise RunFailedError(line, code) from exc


def _fields(config: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The config fields given: ``config``'s (a config object or a dict), then ``overrides``."""
    values = config.to_dict() if dataclasses.is_dataclass(config) else dict(config or {})
    return {**values, **overrides}


def _split(cls: type, overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``overrides`` split into the fields of options class ``cls`` and the rest (config fields)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in overrides.items() if k in names}, {k: v for k, v in overrides.items() if k not in names}


def _run(name: str | None, resume: bool, options: dict[str, Any]):
    from sddarts.platform.options import RunOptions

    return RunOptions(**{k: v for k, v in options.items() if v is not None}, name=name or "", resume=resume)


def search(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None, name: str | None = None,
           resume: bool = False, **overrides: Any) -> SearchResult:
    """Runs one SD-DARTS search (``sddarts search``): a Ray Train job in an MLflow run.

    Args:
        config: the search's fields; default: ``preset``'s (default ``digits-demo``).
        preset: a search preset's name, under ``config`` and ``overrides``.
        name: the run's name (default timestamped); with ``resume=True``, the run to continue.
        overrides: config fields (``epochs=3``, ``sd_weight=0.5``) and ``RunOptions`` fields
            (``tracking_uri``, ``storage_path``, ``experiment``, ``address``, ``system_metrics``, ...).

    Returns:
        A ``SearchResult`` (``history``: one dict of figures per epoch).
    """
    from sddarts.platform import launch
    from sddarts.platform.options import RunOptions
    from sddarts.trainables.presets import DEFAULT_PRESET

    with _one_line():
        options, fields = _split(RunOptions, overrides)
        return launch.search(preset or DEFAULT_PRESET, _fields(config, fields), _run(name, resume, options).named("search"))


def evaluate(genotype: Any, config: EvalConfig | dict[str, Any] | None = None, *, preset: str | None = None,
             name: str | None = None, **overrides: Any) -> EvalResult:
    """Retrains a genotype from scratch and registers the model (``sddarts evaluate``).

    Args:
        genotype: a ``SearchResult`` (its run is the evaluation's parent), a genotype object, or
            what ``--genotype``/``--search-run`` take: a built-in name, a JSON file, a
            NAS-Bench-201 string, a search run's id or name.
        config, preset, name, overrides: as for ``search``, with ``EvalConfig``'s fields.
    """
    from sddarts.platform import launch
    from sddarts.platform.jobs import SearchResult
    from sddarts.platform.options import RunOptions
    from sddarts.platform.tracking.registry import GenotypeSource
    from sddarts.trainables.presets import DEFAULT_PRESET

    with _one_line():
        if isinstance(genotype, SearchResult):
            genotype = genotype.run_id
        elif not isinstance(genotype, str):
            genotype = GenotypeSource(genotype, None, "python")
        options, fields = _split(RunOptions, overrides)
        return launch.evaluate(genotype, preset or DEFAULT_PRESET, _fields(config, fields),
                               _run(name, False, options).named("evaluate"))


def sweep(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None, name: str | None = None,
          resume: bool = False, **overrides: Any) -> SweepResult:
    """Runs a Ray Tune + Optuna sweep of searches (``sddarts sweep``) under one MLflow parent run.

    Args:
        config, preset, name, resume: as for ``search``.
        overrides: config fields, ``RunOptions`` fields and ``SweepOptions`` fields (``trials``,
            ``space_file``, ``metric``, ``proxy_epochs``, ``asha``, ``baseline``, ``max_concurrent``,
            ``evaluate_best``, ...); an option left out keeps its default.

    Returns:
        A ``SweepResult`` with one row per trial.
    """
    from sddarts.platform.options import RunOptions, SweepOptions
    from sddarts.platform.tuning import sweep as tuning
    from sddarts.trainables.presets import DEFAULT_PRESET

    with _one_line():
        options, rest = _split(RunOptions, overrides)
        knobs, fields = _split(SweepOptions, rest)
        return tuning.sweep(preset or DEFAULT_PRESET, _fields(config, fields), SweepOptions(**knobs),
                            _run(name, resume, options).named("sweep"))


def compare(config: SearchConfig | dict[str, Any] | None = None, *, preset: str | None = None,
            variants: dict[str, str] | None = None, name: str | None = None, **overrides: Any) -> CompareResult:
    """DARTS against SD-DARTS variants over paired seeds (``sddarts compare``).

    Args:
        variants: ``{name: flags}`` as ``--variant NAME='FLAGS'`` (``{"w-only": "--distill-on weights"}``);
            default: the config's own SD-DARTS.
        overrides: config fields, ``RunOptions`` fields and ``CompareOptions`` fields (``seeds``,
            ``random``, ``proxy_epochs``, ...).
        config, preset, name: as for ``search``.
    """
    from sddarts.platform.options import CompareOptions, RunOptions
    from sddarts.platform.tuning import compare as tuning
    from sddarts.trainables.presets import DEFAULT_PRESET

    with _one_line():
        options, rest = _split(RunOptions, overrides)
        knobs, fields = _split(CompareOptions, rest)
        specs = [f"{k}={v}" for k, v in (variants or {}).items()]
        return tuning.compare(preset or DEFAULT_PRESET, _fields(config, fields), CompareOptions(**knobs, variants=specs),
                              _run(name, False, options).named("compare"))


def load_model(model_uri: str, tracking_uri: str | None = None):
    """The trained classifier at ``model_uri`` (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``models:/MODEL_ID``, ``runs:/RUN_ID/model``, or an evaluate run's id or name) as a plain
    ``torch.nn.Module``: rebuilt from the recipe in its metadata with its weights. Raw images in
    (float in [0, 1], N x C x H x W), logits out; unlike MLflow's pt2 program it takes ``.eval()``,
    ``.to()``, hooks and further training."""
    from sddarts.platform.export import load_classifier, model_uri as resolve
    from sddarts.platform.options import DEFAULT_EXPERIMENT
    from sddarts.platform.tracking.store import resolve_tracking_uri

    with _one_line():
        uri = resolve_tracking_uri(tracking_uri)
        return load_classifier(resolve(model_uri, uri, DEFAULT_EXPERIMENT), uri)
