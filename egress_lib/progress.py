"""A progress bar for waits: a widget in JupyterLab when ipywidgets is there, text otherwise.

``tqdm.auto`` warns ("IProgress not found") in every notebook without ipywidgets, and that
warning would land in every stored output; so the widget is chosen only when it can work.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules


def waiting_bar(reason: str) -> Any:
    """A spinner-style bar (no total) that disappears when the wait ends."""
    if _in_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as bar  # type: ignore[import-untyped]  # no stubs
    else:
        from tqdm.std import tqdm as bar  # type: ignore[import-untyped]  # no stubs
    # disable=None: no bar when the stream is not a terminal (papermill, CI, notebooks'
    # captured stderr), so run records and stored outputs stay free of progress noise.
    return bar(desc=f"waiting: {reason}", total=None, disable=None, leave=False)
