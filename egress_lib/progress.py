"""What a wait shows: a widget in JupyterLab, a bar on a terminal, log lines headless.

Every display shows the object, its last observed state, the elapsed time and the deadline,
e.g. ``02 waiting for MseIngressConfig egress-gateway: Pending 1m12s / 15m``. A watch may go a
minute without an event, so a ticker thread refreshes the elapsed time in between: the screen
never stands still during a wait.

- In a kernel a person drives (:func:`egress_lib.kernel.widgets_enabled`): an ipywidgets line
  and progress bar (elapsed against the deadline), left in place with the outcome after.
- Under ``egress-runbook run`` (the runner names a run folder in ``$EGRESS_RUN_DIR``) the kernel
  has no screen: plain lines go to the runner's own stderr, which the kernel inherited, when
  the state changes and at least every :data:`HEADLESS_EVERY_SECONDS`. The notebook's outputs
  get none of them, so run records and stored outputs stay free of timing noise.
- Elsewhere: a tqdm bar when stderr is a terminal, nothing otherwise (papermill, nbval, CI).
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from egress_lib import kernel
from egress_lib.plan import RUN_DIR_ENV

if TYPE_CHECKING:
    from typing_extensions import Self

# Set by the runner for each notebook: the step's number, the prefix of its wait lines.
STEP_ENV = "EGRESS_STEP"
HEADLESS_EVERY_SECONDS = 15.0
TICK_SECONDS = 1.0


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


class Ticker:
    """Calls ``fn`` every ``interval`` seconds on a daemon thread until :meth:`stop`."""

    def __init__(self, fn: Callable[[], None], interval: float = TICK_SECONDS) -> None:
        self._fn = fn
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="egress-wait-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            # A display that cannot be refreshed must not end the wait it only reports on.
            with contextlib.suppress(Exception):
                self._fn()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self._interval)


class _Wait:
    """The part of tqdm's interface the waits use, plus the state every display shows."""

    def __init__(self, what: str, timeout: float | None) -> None:
        self.what = what
        self.timeout = timeout
        self.started = time.monotonic()
        self.state = ""
        self.events = 0
        self._lock = threading.Lock()
        self._ticker: Ticker | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        limit = f" / {duration(self.timeout)}" if self.timeout else ""
        state = f": {self.state}" if self.state else ""
        return f"waiting for {self.what}{state} {duration(self.elapsed)}{limit}"

    def refresh(self) -> None:
        """Show the current state and elapsed time (called on events and by the ticker)."""

    def set_postfix_str(self, state: str, refresh: bool = True) -> None:
        with self._lock:
            self.state = state
        self.refresh()

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.events += n
        self.refresh()

    def finish(self, error: BaseException | None) -> None:
        """Show how the wait ended."""

    def __enter__(self) -> Self:
        self._ticker = Ticker(self.refresh, TICK_SECONDS)
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        self.finish(exc)


class LogLines(_Wait):
    """Headless: a line when the state changes and at least every HEADLESS_EVERY_SECONDS."""

    def __init__(self, what: str, timeout: float | None, stream: IO[str]) -> None:
        super().__init__(what, timeout)
        self.stream = stream
        self.printed_at = 0.0
        self.printed_state: str | None = None
        step = os.environ.get(STEP_ENV, "")
        self.prefix = f"{step} " if step else ""

    def _print(self) -> None:
        self.printed_at = time.monotonic()
        self.printed_state = self.state
        # The runner's stderr may be gone (a closed pipe): the wait goes on regardless.
        with contextlib.suppress(OSError, ValueError):
            print(self.prefix + self.line(), file=self.stream, flush=True)

    def refresh(self) -> None:
        with self._lock:
            if (
                self.state != self.printed_state
                or time.monotonic() - self.printed_at >= HEADLESS_EVERY_SECONDS
            ):
                self._print()

    def finish(self, error: BaseException | None) -> None:
        # A wait that ended at once printed nothing, and says nothing now.
        if error is None and self.printed_at:
            with self._lock:
                self.state = "done"
                self._print()


class WidgetWait(_Wait):
    """JupyterLab: one line (object, state, elapsed / deadline) above a bar of the deadline."""

    def __init__(self, what: str, reason: str, timeout: float | None) -> None:
        import ipywidgets as widgets

        super().__init__(what, timeout)
        self.reason = reason
        self.label = widgets.HTML()
        self.bar = widgets.FloatProgress(
            value=0.0,
            min=0.0,
            max=float(timeout or 1.0),
            layout=widgets.Layout(width="24em", display="" if timeout else "none"),
        )
        self.box = widgets.VBox([self.label, self.bar])
        self.box.add_class("egress-wait")
        self.refresh()
        kernel.display(self.box)

    def _html(self, mark: str, text: str) -> str:
        why = f"<br><small>{html.escape(self.reason)}</small>" if self.reason else ""
        return f"<span class='egress-wait-line'>{mark} {html.escape(text)}</span>{why}"

    def refresh(self) -> None:
        with self._lock:
            self.label.value = self._html("⏳", self.line())
            if self.timeout:
                self.bar.value = min(self.elapsed, self.timeout)

    def finish(self, error: BaseException | None) -> None:
        took = duration(self.elapsed)
        state = f": {self.state}" if self.state else ""
        with self._lock:
            self.bar.layout.display = "none"  # the line says how it ended; the bar is history
            if error is None:
                self.label.value = self._html("✓", f"{self.what}{state}: done after {took}")
            else:
                self.label.value = self._html("✗", f"{self.what}{state}: stopped after {took}")


class _TerminalBar(_Wait):
    """A tqdm bar on a terminal; nothing when stderr is not one."""

    def __init__(self, reason: str, what: str, timeout: float | None) -> None:
        from tqdm.std import tqdm  # type: ignore[import-untyped]  # no stubs

        super().__init__(what, timeout)
        # disable=None: no bar when the stream is not a terminal (papermill, CI, notebooks'
        # captured stderr), so run records and stored outputs stay free of progress noise.
        self.bar: Any = tqdm(desc=f"waiting: {reason}", total=None, disable=None, leave=False)

    def refresh(self) -> None:
        with self._lock:
            limit = f" / {duration(self.timeout)}" if self.timeout else ""
            self.bar.set_postfix_str(f"{self.state}{limit}", refresh=True)

    def finish(self, error: BaseException | None) -> None:
        self.bar.close()


def waiting_bar(reason: str, *, what: str | None = None, timeout: float | None = None) -> Any:
    """A display for one wait (a context manager); see the module doc for which one."""
    stream = sys.__stderr__
    if kernel.shell() is not None and os.environ.get(RUN_DIR_ENV) and stream is not None:
        return LogLines(what or reason, timeout, stream)
    if kernel.widgets_enabled():
        return WidgetWait(what or reason, reason, timeout)
    return _TerminalBar(reason, what or reason, timeout)
