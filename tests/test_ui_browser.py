"""`sddarts ui` checked in a real browser: Debian's chromium driven by Playwright."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.ray
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make test`")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)")
def test_ui_lists_the_run_and_its_cell_picture(watched_run):
    out, sqlite_uri = watched_run.out, watched_run.uri  # a search with system metrics every 0.5 s
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([sys.executable, "-m", "sddarts.platform.commands.cli", "ui", "--port", str(port),
                           "--tracking-uri", sqlite_uri], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
    try:
        printed = ui.stdout.readline()
        link = f"http://127.0.0.1:{port}/#/experiments/{out.experiment_id}?workflowType=machine_learning"
        assert link in printed, printed
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        shots = Path(os.environ.get("SDDARTS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
        shots.mkdir(parents=True, exist_ok=True)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(link)  # the page `sddarts ui` prints
            page.get_by_text("watched").first.wait_for(timeout=60_000)  # it opens on the training runs
            page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "ui_experiment.png"))
            body = page.inner_text("body")
            assert "Detect Issues in Your Traces" not in body and "Evaluations" not in body  # not the GenAI view
            page.goto(f"http://127.0.0.1:{port}/#/experiments/{out.experiment_id}/runs/{out.run_id}/artifacts")
            page.get_by_text("plots", exact=True).first.click(timeout=60_000)
            page.get_by_text("cell_normal.png").first.wait_for(timeout=60_000)
            page.get_by_text("cell_normal.png").first.click()
            picture = page.locator("img[src^='blob:']").first  # the artifact viewer shows it from a blob
            picture.wait_for(timeout=60_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(shots / "ui_run_artifacts.png"))
            picture.screenshot(path=str(shots / "ui_cell_normal.png"))  # the picture a reader checks
            box = picture.bounding_box()
            page.goto(f"http://127.0.0.1:{port}/#/experiments/{out.experiment_id}/runs/{out.run_id}/system-metrics"
                      "?workflowType=machine_learning")
            page.get_by_text("cpu_utilization_percentage").first.wait_for(timeout=60_000)  # MLflow's system metrics
            page.locator(".js-plotly-plot, canvas, svg.main-svg").first.wait_for(timeout=60_000)  # a drawn chart
            page.wait_for_timeout(3000)
            page.screenshot(path=str(shots / "ui_system_metrics.png"))
            browser.close()
        assert box["width"] > 300 and box["height"] > 100
        assert (shots / "ui_cell_normal.png").stat().st_size > 5_000
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
