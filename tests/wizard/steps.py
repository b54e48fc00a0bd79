"""Browser steps on the wizard notebook in JupyterLab (shared by the lab and the hub tests)."""

from __future__ import annotations

import re
from typing import Any

from ..browser import screenshot


def run_wizard_notebook(page: Any, shots: str) -> None:
    """In an opened wizard notebook: wait for the kernel, Run All Cells, wait for the wizard
    (a screenshot ``<shots>-failed`` is saved if it does not come)."""
    try:
        _run_all(page)
    except Exception:
        screenshot(page, f"{shots}-failed")
        raise
    screenshot(page, f"{shots}-1-data")


def _run_all(page: Any) -> None:
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    idle = page.get_by_text(re.compile(r"\(ipykernel\) \| Idle"))
    choose = page.get_by_role("button", name="Select", exact=True)  # "Select Kernel" dialog
    idle.or_(choose).first.wait_for(timeout=120_000)
    if choose.is_visible():  # JupyterLab asks when the notebook opened before the kernel list
        choose.click()
        idle.wait_for(timeout=120_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[role=menuitem]", has_text="Run All Cells").first.click()
    page.locator(".mlaas4hep-wizard").wait_for(timeout=180_000)
    page.get_by_text(re.compile(r"[\d,]+ entries, ")).first.wait_for(timeout=120_000)


def add_cut_in_wizard(page: Any, expression: str) -> str:
    """On the Features tab, add the cut ``expression``; return the preview of the events
    that pass (read from the first events of every chosen file)."""
    page.get_by_role("tab", name="2. Features").click()
    page.locator(".mlaas4hep-cut-expression input").fill(expression)
    page.get_by_text("valid cut").wait_for(timeout=30_000)
    page.locator(".mlaas4hep-add-cut").click()
    preview = page.get_by_text("events pass")
    preview.wait_for(timeout=60_000)
    return preview.inner_text()


def train_in_wizard(page: Any, shots: str, epochs: int = 2) -> None:
    """Open the Train tab, set the epochs, click Train; wait for the live plot and results."""
    page.get_by_role("tab", name="4. Train").click()
    page.locator(".mlaas4hep-epochs input").fill(str(epochs))
    page.locator(".mlaas4hep-epochs input").press("Enter")
    page.locator(".mlaas4hep-train").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('.mlaas4hep-live-plot');"
        " return i && i.naturalWidth > 0; }", timeout=300_000)
    screenshot(page, f"{shots}-3-training")
    page.get_by_text("Test split", exact=True).wait_for(timeout=300_000)
    screenshot(page, f"{shots}-4-results")
