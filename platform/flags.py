"""CLI flags generated from the config dataclasses: one flag per field, named after it."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sddarts.trainables.config import CommonConfig, ConfigError, allowed_range, field_type



def preset_in(argv: list[str]) -> str:
    """The value of ``--preset`` in ``argv`` ('' if absent)."""
    for i, arg in enumerate(argv):
        if arg == "--preset" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--preset="):
            return arg.split("=", 1)[1]
    return ""


def flag_name(field_name: str) -> str:
    """``vote_count`` -> ``--vote-count``; ``C`` -> ``--C``."""
    return "--" + field_name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser, cls: type[CommonConfig], presets: dict[str, dict],
                     default_preset: str, overrides: dict[str, Any] | None = None, help_preset: str = "") -> None:
    """Adds ``--preset`` and one flag per field of ``cls``; unset flags leave the preset's value.
    Each flag's help shows the value the command uses with ``help_preset`` (the ``--preset`` on
    the command line), else ``default_preset`` (and ``overrides``, the command's own defaults,
    such as one worker per sweep trial)."""
    group = parser.add_argument_group(f"{cls.__name__} fields (override the preset)")
    parser.add_argument("--preset", choices=sorted(presets), default=None,
                        help=f"named defaults to start from; flags override them (default: {default_preset})")
    parser.set_defaults(preset_default=default_preset, config_overrides=dict(overrides or {}))
    shown = help_preset if help_preset in presets else default_preset  # `--preset X --help` shows X's values
    add_field_flags(group, cls, cls.from_dict({**presets[shown], **(overrides or {})}), shown)


def add_field_flags(group, cls: type[CommonConfig], defaults: CommonConfig, shown: str) -> None:
    """One flag per field of ``cls``, unset by default; its help shows ``defaults``' value."""
    for f in dataclasses.fields(cls):
        typ = field_type(f)
        help_text = f"{f.metadata['help']} [{allowed_range(cls, f.name)}; {shown}: {getattr(defaults, f.name)!r}]"
        if typ is bool:
            group.add_argument(flag_name(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag_name(f.name), dest=f.name, type=typ, default=argparse.SUPPRESS,
                               metavar=f.name.upper() if len(f.name) > 1 else "N", help=help_text)


def config_from_args(cls: type[CommonConfig], presets: dict[str, dict], args: argparse.Namespace) -> CommonConfig:
    """The preset's values (``--preset``, else the command's default preset), then the command's
    own defaults, then the flags given; validated."""
    names = {f.name for f in dataclasses.fields(cls)}
    args.preset = args.preset or args.preset_default
    values: dict[str, Any] = dict(presets[args.preset])
    values.update(args.config_overrides)
    values.update({k: v for k, v in vars(args).items() if k in names})
    try:
        return cls.from_dict(values).validate()
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def field_overrides(cls: type[CommonConfig], text: str, what: str) -> dict[str, Any]:
    """The config fields that the flags in ``text`` (``'--distill-on weights --sd-weight 0.5'``) set;
    a bad flag or value raises ConfigError naming ``what``."""
    import shlex

    parser = argparse.ArgumentParser(prog=what, add_help=False, exit_on_error=False)
    add_field_flags(parser, cls, cls(), "default")
    try:
        known, extra = parser.parse_known_args(shlex.split(text))
    except (argparse.ArgumentError, ValueError) as exc:
        raise ConfigError(f"{what}: {exc}") from None
    if extra:
        raise ConfigError(f"{what}: unknown flag(s) {' '.join(extra)}; give config fields as flags, e.g. --sd-weight 0.5")
    return vars(known)
