"""The README's quick start, run literally as a shell script, as a newcomer would after `make demo`."""

import os
import re
import subprocess

import pytest

from helpers import ROOT, readme_block, wait_for_free_cpus

pytestmark = pytest.mark.ray


def test_readme_quick_start_runs_as_written_with_a_quiet_console(ray_session, tmp_path):
    block = readme_block("## Quick start", "bash")
    assert block.startswith("source .venv/bin/activate") and "sddarts search" in block
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # a clone's venv, as `make demo` leaves it
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "VIRTUAL_ENV", "RAY_DEDUP_LOGS")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # sddarts only on PATH once the venv is active
    env["RAY_ADDRESS"] = ray_session  # the session's Ray: one Ray per machine (see conftest)
    wait_for_free_cpus()
    proc = subprocess.run(["bash", "-c", "set -eo pipefail\n" + block], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:]
    assert "search quickstart finished" in out and "registered: models:/sddarts-darts-digits/" in out
    assert re.search(r"search\s+FINISHED\s+quickstart", out)  # `sddarts runs`
    assert "epochs:" in out and "artifacts: alpha.json" in out  # `sddarts runs quickstart`
    assert "3,349,342" in out  # `sddarts describe DARTS_V2`
    # the search's console: its epoch lines, then its summary; at most 5 other lines before it
    search_part = out.split("search quickstart finished", 1)[0]
    others = [line for line in search_part.splitlines() if line.strip() and not re.search(r"\] epoch \d+/\d+ ", line)]
    assert len(others) <= 5, others
    assert len(re.findall(r"\[quickstart\] epoch \d/1 ", search_part)) == 1
    for line in out.splitlines():  # no error-level line anywhere on a successful run
        assert not re.search(r"\bE \d{4}-|\bE \d+ \d+\]|\bERROR\b|Traceback", line), line
    wait_for_free_cpus()
