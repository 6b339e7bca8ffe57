"""Sweep search spaces: the default over SD-DARTS' knobs, and user files (YAML or JSON).

A space file maps config fields to distributions::

    sd_weight:        {type: float, low: 0.05, high: 5.0, log: true}
    teacher_interval: {type: int, low: 2, high: 100, log: true}
    voting:           {type: categorical, choices: [soft, hard]}
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import optuna

from sddarts.trainables.config import ConfigError, SearchConfig

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "sd_weight": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
    "teacher_interval": {"type": "int", "low": 2, "high": 100, "log": True},
    "vote_count": {"type": "int", "low": 1, "high": 5},
    "temperature": {"type": "float", "low": 1.0, "high": 8.0},
}
NOT_TUNABLE = {"num_workers", "cpus_per_worker", "gpus_per_worker", "epochs", "dataset", "data_dir", "download",
               "loader_workers", "max_failures"}


class SpaceError(ConfigError):
    """A malformed search-space file; the message names the field."""


def load_space(path: str | Path) -> dict[str, dict[str, Any]]:
    """Reads a YAML or JSON space file."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"space file {str(path)!r} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        detail = " ".join(str(exc).split())  # one line
        raise SpaceError(f"space file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {detail}") from None
    if not isinstance(data, dict) or not data:
        raise SpaceError(f"space file {path} must map config fields to distributions")
    return data


def to_distributions(space: dict[str, dict[str, Any]], base: SearchConfig) -> dict[str, optuna.distributions.BaseDistribution]:
    """Checks every entry against the config's fields and ranges; returns Optuna distributions."""
    fields = {f.name: f for f in dataclasses.fields(SearchConfig)}
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, spec in space.items():
        if name not in fields:
            raise SpaceError(f"space: unknown field {name!r}; tunable fields: {', '.join(sorted(set(fields) - NOT_TUNABLE))}")
        if name in NOT_TUNABLE:
            raise SpaceError(f"space: field {name!r} is fixed for a sweep; set it with --{name.replace('_', '-')}")
        if not isinstance(spec, dict) or spec.get("type") not in ("float", "int", "categorical"):
            raise SpaceError(f"space.{name}: needs type float, int or categorical (got {spec!r})")
        try:
            if spec["type"] == "categorical":
                choices = list(spec["choices"])
                values = choices
                dist = optuna.distributions.CategoricalDistribution(choices)
            else:
                cast = float if spec["type"] == "float" else int
                low, high = cast(spec["low"]), cast(spec["high"])
                if not low < high:
                    raise SpaceError(f"space.{name}: low must be < high (got {low} and {high})")
                values = [low, high]
                log = bool(spec.get("log", False))
                dist = (optuna.distributions.FloatDistribution(low, high, log=log) if cast is float
                        else optuna.distributions.IntDistribution(low, high, log=log))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SpaceError):
                raise
            raise SpaceError(f"space.{name}: {type(exc).__name__}: {exc} (float/int need low and high; categorical needs choices)") from None
        for value in values:  # every value the sampler can draw must be a valid config
            try:
                base.replace(**{name: value}).validate()
            except (ConfigError, TypeError) as exc:
                raise SpaceError(f"space.{name}: {exc}") from None
        out[name] = dist
    return out
