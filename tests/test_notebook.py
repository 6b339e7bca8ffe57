"""The quick-start notebook, executed end to end (nbclient, a real kernel) in a small config."""

from __future__ import annotations

import os

import pytest

from helpers import ROOT, wait_for_free_cpus

pytestmark = pytest.mark.ray


def test_the_quickstart_notebook_runs_end_to_end(ray_session, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SDDARTS_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("RAY_ADDRESS", ray_session)  # the kernel joins the session's Ray
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nb = nbformat.read(ROOT / "examples/quickstart.ipynb", as_version=4)
    wait_for_free_cpus()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "models:/sddarts-darts-digits/1" in text and "predicted:" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the cell, the curves, the digits
    assert (tmp_path / "model.onnx").is_file() and os.path.getsize(tmp_path / "model.onnx") > 0
    wait_for_free_cpus()
