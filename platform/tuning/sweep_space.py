"""Sweep search spaces: the default over SD-DARTS' knobs, and user files (YAML or JSON).

A space file maps config fields to distributions::

    sd_weight:        {type: float, low: 0.05, high: 5.0, log: true}
    teacher_interval: {type: int, low: 2, high: 100, log: true}
    voting:           {type: categorical, choices: [soft, hard]}
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import optuna

from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import SearchConfig

DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "sd_weight": {"type": "float", "low": 0.05, "high": 5.0, "log": True},
    "teacher_interval": {"type": "int", "low": 2, "high": 100, "log": True},
    "vote_count": {"type": "int", "low": 1, "high": 5},
    "temperature": {"type": "float", "low": 1.0, "high": 8.0},
    "distill_on": {"type": "categorical", "choices": ["both", "weights", "arch"]},
    "voting": {"type": "categorical", "choices": ["soft", "hard"]},
}
NOT_TUNABLE = {"num_workers", "cpus_per_worker", "gpus_per_worker", "epochs", "dataset", "data_dir", "download",
               "image_size", "data_mean", "data_std", "nb201_bench", "loader_workers", "max_failures", "precision", "channels_last", "augment_on_device", "teacher_vmap"}


class SpaceError(ConfigError):
    """A malformed search-space file; the message names the field."""


def load_space(path: str | Path) -> dict[str, dict[str, Any]]:
    """Reads a YAML or JSON space file."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"space file {str(path)!r} does not exist")
    try:
        text = path.read_text()
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
                odd = [c for c in choices if c is not None and not isinstance(c, (bool, int, float, str))]
                if odd:  # Optuna would warn about it, then store it badly
                    raise SpaceError(f"space.{name}: choices must be numbers, strings, booleans or null (got {odd[0]!r})")
                dist = optuna.distributions.CategoricalDistribution(choices)
            else:
                cast = float if spec["type"] == "float" else int
                for bound in ("low", "high"):
                    value = spec[bound]
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or (cast is int and not isinstance(value, int)):
                        raise SpaceError(f"space.{name}: {bound} must be {'an integer' if cast is int else 'a number'} "
                                         f"for type {spec['type']} (got {value!r})")
                    if not math.isfinite(value):
                        raise SpaceError(f"space.{name}: {bound} must be finite (got {value!r})")
                low, high = cast(spec["low"]), cast(spec["high"])
                if not low < high:
                    raise SpaceError(f"space.{name}: low must be < high (got {low} and {high})")
                values = [low, high]
                log = bool(spec.get("log", False))
                dist = (optuna.distributions.FloatDistribution(low, high, log=log) if cast is float
                        else optuna.distributions.IntDistribution(low, high, log=log))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
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


def baseline_point(dists: dict[str, optuna.distributions.BaseDistribution], base: SearchConfig
                   ) -> tuple[dict[str, Any], dict[str, optuna.distributions.BaseDistribution]]:
    """Plain DARTS as a point of the space: sd_weight=0 if the space admits it, else vote_count=0.
    Returns the point and the space that holds it (vote_count's range widened to 0 where needed);
    other knobs keep the base config's value, clipped into their range."""
    point: dict[str, Any] = {}
    for name, dist in dists.items():
        value = getattr(base, name)
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            point[name] = value if value in dist.choices else dist.choices[0]
        else:
            point[name] = min(max(value, dist.low), dist.high)
    sd, vc = dists.get("sd_weight"), dists.get("vote_count")
    if isinstance(sd, optuna.distributions.FloatDistribution) and sd.low == 0:
        return {**point, "sd_weight": 0.0}, dict(dists)
    if isinstance(vc, optuna.distributions.IntDistribution):
        widened = optuna.distributions.IntDistribution(0, vc.high, log=False, step=vc.step)
        return {**point, "vote_count": 0}, {**dists, "vote_count": widened}
    raise SpaceError("--baseline needs sd_weight (with low 0) or vote_count in the space")


def space_of(dists: dict[str, optuna.distributions.BaseDistribution]) -> dict[str, dict[str, Any]]:
    """The space file form of Optuna distributions: what a sweep actually samples."""
    out: dict[str, dict[str, Any]] = {}
    for name, dist in dists.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            out[name] = {"type": "categorical", "choices": list(dist.choices)}
        else:
            kind = "float" if isinstance(dist, optuna.distributions.FloatDistribution) else "int"
            out[name] = {"type": kind, "low": dist.low, "high": dist.high, "log": dist.log}
    return out
