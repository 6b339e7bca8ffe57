"""CLI flags generated from the dataclasses: one flag per config field and per option, named after
it, with its help and allowed range; unset flags leave the dataclass's (or the preset's) value."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import allowed_range, field_type
from sddarts.trainables.presets import DEFAULT_PRESET


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


def add_config_flags(parser: argparse.ArgumentParser, cls: type, presets: dict[str, dict],
                     defaults: dict[str, Any] | None = None, help_preset: str = "") -> None:
    """Adds ``--preset`` and one flag per field of config ``cls``. Each flag's help shows the value
    the command uses with ``help_preset`` (the ``--preset`` on the command line), else the default
    preset, and ``defaults`` (the command's own, such as one worker per sweep trial)."""
    group = parser.add_argument_group(f"{cls.__name__} fields (override the preset)")
    parser.add_argument("--preset", choices=sorted(presets), default=DEFAULT_PRESET,
                        help=f"named defaults to start from; flags override them (default: {DEFAULT_PRESET})")
    shown = help_preset if help_preset in presets else DEFAULT_PRESET  # `--preset X --help` shows X's values
    add_field_flags(group, cls, cls.from_dict({**presets[shown], **(defaults or {})}), shown)


def add_option_flags(parser, cls: type, title: str) -> None:
    """One flag per option of dataclass ``cls`` (an ``options`` class) under ``title``."""
    add_field_flags(parser.add_argument_group(title), cls, cls(), "default", choices=True)


def add_field_flags(group, cls: type, defaults: Any, shown: str, choices: bool = False) -> None:
    """One flag per field of ``cls`` (but those marked ``flag=False``), unset by default; its help
    shows ``defaults``' value. With ``choices``, argparse itself refuses a value outside a field's
    choices (a config's fields are checked by its ``validate()``, which names the preset's value)."""
    for f in dataclasses.fields(cls):
        if not f.metadata.get("flag", True):
            continue
        typ = field_type(f)
        help_text = f"{f.metadata['help']} [{allowed_range(cls, f.name)}; {shown}: {getattr(defaults, f.name)!r}]"
        if typ is bool:
            group.add_argument(flag_name(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        else:
            allowed = f.metadata.get("choices") if choices else None
            group.add_argument(flag_name(f.name), dest=f.name, type=typ, default=argparse.SUPPRESS, choices=allowed,
                               metavar=f.name.upper() if len(f.name) > 1 else "N", help=help_text.replace("%", "%%"))


def given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of dataclass ``cls`` that flags in ``args`` set."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names}


def field_overrides(cls: type, text: str, what: str) -> dict[str, Any]:
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
