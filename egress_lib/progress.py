"""What a wait shows while it waits: a bar on a terminal or in JupyterLab, log lines headless.

``tqdm.auto`` warns ("IProgress not found") in every notebook without ipywidgets, and that
warning would land in every stored output; so the widget is chosen only when it can work.

Under ``egress-runbook run`` (the runner names a run folder in ``$EGRESS_RUN_DIR``) the kernel
has no screen: each wait then writes plain lines to the runner's own stderr, which the kernel
inherited, e.g. ``02 waiting for MseIngressConfig egress-gateway: Pending 1m12s / 15m`` — when
the state changes and at least every :data:`HEADLESS_EVERY_SECONDS`. The notebook's outputs get
none of these lines, so run records and stored outputs stay free of timing noise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from egress_lib.plan import RUN_DIR_ENV

if TYPE_CHECKING:
    from typing_extensions import Self

# Set by the runner for each notebook: the step's number, the prefix of its wait lines.
STEP_ENV = "EGRESS_STEP"
HEADLESS_EVERY_SECONDS = 15.0


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules


def duration(seconds: float) -> str:
    """``45s``, ``1m12s``, ``15m``, ``1h02m``: as short as it can be read."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, rest = divmod(s, 60)
        return f"{m}m{rest:02d}s" if rest else f"{m}m"
    h, rest = divmod(s, 3600)
    return f"{h}h{rest // 60:02d}m"


class LogLines:
    """A headless wait display with the part of tqdm's interface the waits use."""

    def __init__(self, what: str, timeout: float | None, stream: IO[str]) -> None:
        self.what = what
        self.timeout = timeout
        self.stream = stream
        self.started = time.monotonic()
        self.state = ""
        self.printed_at = 0.0
        step = os.environ.get(STEP_ENV, "")
        self.prefix = f"{step} " if step else ""

    def _line(self) -> str:
        elapsed = duration(time.monotonic() - self.started)
        limit = f" / {duration(self.timeout)}" if self.timeout else ""
        state = f": {self.state}" if self.state else ""
        return f"{self.prefix}waiting for {self.what}{state} {elapsed}{limit}"

    def _print(self) -> None:
        self.printed_at = time.monotonic()
        # The runner's stderr may be gone (a closed pipe): the wait goes on regardless.
        with contextlib.suppress(OSError, ValueError):
            print(self._line(), file=self.stream, flush=True)

    def set_postfix_str(self, state: str, refresh: bool = True) -> None:
        changed = state != self.state
        self.state = state
        if changed or time.monotonic() - self.printed_at >= HEADLESS_EVERY_SECONDS:
            self._print()

    def update(self, n: int = 1) -> None:
        if time.monotonic() - self.printed_at >= HEADLESS_EVERY_SECONDS:
            self._print()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        # A wait that ended at once printed nothing, and says nothing now.
        if exc[0] is None and self.printed_at:
            self.state = "done"
            self._print()


def waiting_bar(reason: str, *, what: str | None = None, timeout: float | None = None) -> Any:
    """A display for one wait: log lines under the runner, else a bar that disappears after."""
    stream = sys.__stderr__
    if _in_kernel() and os.environ.get(RUN_DIR_ENV) and stream is not None:
        return LogLines(what or reason, timeout, stream)
    if _in_kernel() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as bar  # type: ignore[import-untyped]  # no stubs
    else:
        from tqdm.std import tqdm as bar  # type: ignore[import-untyped]  # no stubs
    # disable=None: no bar when the stream is not a terminal (papermill, CI, notebooks'
    # captured stderr), so run records and stored outputs stay free of progress noise.
    return bar(desc=f"waiting: {reason}", total=None, disable=None, leave=False)
