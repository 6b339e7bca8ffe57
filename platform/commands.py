"""Subcommands beyond ``search``; each module registers its own."""

from __future__ import annotations


def register(sub, run_flags) -> None:
    return None
