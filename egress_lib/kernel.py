"""Where the code runs: a Jupyter kernel a person drives, a headless one, or plain Python.

Widgets need a front end that renders them. Under papermill, nbval or ``egress-runbook run``
there is none, and a widget would only leave dead widget state in the stored notebook; so
widgets are used only in a kernel that a Jupyter server started (JupyterLab and Notebook set
``JPY_SESSION_NAME`` in the kernel's environment), outside the runner, and without
parameters injected by papermill. ``EGRESS_WIDGETS=1`` allows them in other kernels (another
front end that renders widgets, such as VS Code), ``EGRESS_WIDGETS=0`` turns them off.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from egress_lib.plan import RUN_DIR_ENV

WIDGETS_ENV = "EGRESS_WIDGETS"
# jupyter_server adds this to every kernel it starts for a notebook session.
JUPYTER_SESSION_ENV = "JPY_SESSION_NAME"


def shell() -> Any | None:
    """The running IPython kernel's shell, or None outside a kernel."""
    if "ipykernel" not in sys.modules:
        return None
    from IPython import get_ipython

    ip = get_ipython()
    return ip if ip is not None and getattr(ip, "kernel", None) is not None else None


def papermill_injected() -> bool:
    """True when papermill injected a parameters cell into this kernel's history."""
    from egress_lib.parameters import _injected_cells

    ip = shell()
    history = ip.user_ns.get("In") if ip is not None else None
    return isinstance(history, list) and bool(_injected_cells(history))


def widgets_enabled() -> bool:
    """True when a person is at a front end that renders ipywidgets (see the module doc)."""
    forced = os.environ.get(WIDGETS_ENV, "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if shell() is None or importlib.util.find_spec("ipywidgets") is None:
        return False
    if os.environ.get(RUN_DIR_ENV) or papermill_injected():
        return False  # headless, whatever else the environment says
    return forced in ("1", "true", "yes", "on") or bool(os.environ.get(JUPYTER_SESSION_ENV))


def display(*objs: object) -> None:
    """IPython's ``display`` (untyped upstream), in the output area that is current."""
    from IPython.display import display as _display

    _display(*objs)  # type: ignore[no-untyped-call]
