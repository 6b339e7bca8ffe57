"""How a printed hint names this program, so that every hint is a command that runs as printed."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


def command_name() -> str:
    """``sddarts`` when that is what the shell finds, else the full path of the script that runs
    now (for example ``.venv/bin/sddarts`` before the venv is activated)."""
    found = shutil.which("sddarts")
    script = Path(sys.argv[0]) if Path(sys.argv[0]).name == "sddarts" else None
    if script is None:  # python -m sddarts.platform.commands.cli, or a test calling main()
        local = shutil.which("sddarts", path=os.path.dirname(sys.executable))
        script = Path(local) if local else None
    if script is None:
        return f"{shlex.quote(sys.executable)} -m sddarts.platform.commands.cli"
    if found and Path(found).resolve() == script.resolve():
        return "sddarts"
    return shlex.quote(str(script.resolve()))
