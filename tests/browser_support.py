"""Helpers of the browser tests (``from browser_support import shot``): paths and screenshots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("EGRESS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def artifacts() -> Path:
    """``test-artifacts/browser/`` (or under ``$EGRESS_TEST_ARTIFACTS``), created."""
    out = Path(os.environ.get("EGRESS_TEST_ARTIFACTS") or REPO / "test-artifacts") / "browser"
    out.mkdir(parents=True, exist_ok=True)
    return out


def shot(page: Any, name: str, *, panel: bool = False, locator: Any = None) -> Path:
    """Save a screenshot: the page, or the notebook around the last Apply panel."""
    path = artifacts() / f"{name}.png"
    if locator is None and panel:
        locator = page.locator(".egress-apply-panel").last
    if locator is not None:
        locator.scroll_into_view_if_needed()
    page.screenshot(path=str(path))
    return path


def menu(page: Any, name: str, item: str) -> None:
    """Click ``item`` in JupyterLab's main menu ``name`` ("Run", "Kernel", ...)."""
    page.locator("#jp-MainMenu").get_by_text(name, exact=True).click()
    page.locator(".lm-Menu-content").get_by_text(item, exact=True).click()


def wait_kernel_idle(page: Any, timeout: float = 60) -> None:
    """Until the status bar says the kernel is connected and idle."""
    # It says "Python 3 (ipykernel) | Idle" once the kernel is connected and idle.
    page.locator("#jp-main-statusbar", has_text="Idle").wait_for(timeout=timeout * 1000)
    page.wait_for_function(
        "() => !document.querySelector('#jp-main-statusbar').textContent.includes('Busy')",
        timeout=timeout * 1000,
    )
