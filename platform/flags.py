"""CLI flags generated from the config dataclasses: one flag per field, named after it."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sddarts.trainables.config import CommonConfig, ConfigError, allowed_range

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def flag_name(field_name: str) -> str:
    """``vote_count`` -> ``--vote-count``; ``C`` -> ``--C``."""
    return "--" + field_name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type[CommonConfig], presets: dict[str, dict]) -> None:
    """Adds ``--preset`` and one flag per field of ``cls``; unset flags leave the preset's value."""
    group = parser.add_argument_group(f"{cls.__name__} fields (override the preset)")
    parser.add_argument("--preset", choices=sorted(presets), default=None,
                        help="named defaults to start from; flags override them")
    defaults = cls()
    for f in dataclasses.fields(cls):
        typ = _TYPES[f.type] if isinstance(f.type, str) else f.type
        help_text = f"{f.metadata['help']} [{allowed_range(cls, f.name)}; default {getattr(defaults, f.name)!r}]"
        if typ is bool:
            group.add_argument(flag_name(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag_name(f.name), dest=f.name, type=typ, default=argparse.SUPPRESS,
                               metavar=f.name.upper() if len(f.name) > 1 else "N", help=help_text)


def config_from_args(cls: type[CommonConfig], presets: dict[str, dict], args: argparse.Namespace,
                     base: dict[str, Any] | None = None) -> CommonConfig:
    """Preset values, then ``base``, then the flags given; validated."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = dict(presets.get(getattr(args, "preset", None) or "", {}))
    values.update(base or {})
    values.update({k: v for k, v in vars(args).items() if k in names})
    try:
        return cls.from_dict(values).validate()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
