"""The shipped wizard notebook: headless execution (nbclient) and a real JupyterLab in chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from ..browser import free_port, screenshot
from .conftest import WIZARD_NOTEBOOK
from .steps import add_cut_in_wizard, run_wizard_notebook, train_in_wizard

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_notebook_runs_headless_top_to_bottom(home: Path) -> None:
    notebook = nbformat.read(home / WIZARD_NOTEBOOK, as_version=4)
    env = {"HOME": str(home)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(home)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs), outputs


@pytest.fixture
def lab(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab serving ``home`` on 127.0.0.1 (token auth); yields its URL with the token."""
    port, token = free_port(), "wizard-test-token-5c1d"
    log = tmp_path_factory.mktemp("lab") / "jupyterlab.log"
    env = {**os.environ, "HOME": str(home)}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
             f"--port={port}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={home}", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"{url}/lab/tree/{quote(WIZARD_NOTEBOOK)}?token={token}"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A browser page; its screenshot is saved when the test fails."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    failed = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed:
        screenshot(page, f"{request.node.name}-failed")
    page.close()


def test_wizard_trains_in_jupyterlab(home: Path, lab: str, page: Any) -> None:
    (home / "more").mkdir()
    shutil.copy(home / "samples" / "background.root", home / "more" / "background-2.root")
    page.goto(lab)
    run_wizard_notebook(page, "wizard")
    page.locator(".mlaas4hep-file-chooser select").select_option("more/background-2.root")
    page.locator(".mlaas4hep-add-selected").click()
    page.locator(".widget-label", has_text="more/background-2.root").wait_for(timeout=30_000)

    add_cut_in_wizard(page, "nJets >= 4")
    screenshot(page, "wizard-2-features")

    train_in_wizard(page, "wizard")
    runs = list((home / "wizard-runs").glob("*/output/metrics.json"))
    assert len(runs) == 1
    files = next((home / "wizard-runs").glob("*/inputs/files.txt")).read_text()
    assert "background-2.root" in files
