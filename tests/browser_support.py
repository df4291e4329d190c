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
