"""Errors in operator size: a short box (what failed, the codes, what to do), traceback folded.

:func:`render` turns any exception into an :class:`ErrorBox`; :func:`install` makes an IPython
kernel show that box for every :class:`~egress_lib.errors.EgressError` instead of the long
traceback. The cell still fails: the kernel still sends an ``error`` message and its
execute_reply says ``error``, so papermill and nbclient stop as before.

This module imports IPython only inside :func:`install`'s handler, where it is loaded anyway.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import sys
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from egress_lib.errors import (
    CloudApiError,
    EgressError,
    KubeEvent,
    KubernetesApiError,
    redact,
)

# More lines of a message than this go to the traceback fold only (NotApproved quotes a plan).
MAX_DETAIL_LINES = 15
_MARK = "_egress_error_box"  # set on a shell whose handler is ours
_CODE = re.compile(r"`([^`]+)`")
_BOX_STYLE = (
    "border:1px solid #d9534f;border-left:6px solid #d9534f;border-radius:4px;"
    "padding:6px 12px;margin:4px 0;line-height:1.45"
)
_HEAD_STYLE = "font-weight:bold;color:#a94442"
_URL = re.compile(r"(https?://[^\s<>()\"']+[^\s<>()\"'.,;:])")


@dataclass(frozen=True)
class ErrorBox:
    """One error, ready to show: HTML for JupyterLab, short plain text for logs."""

    kind: str
    summary: str
    details: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]
    remedy: str
    recommend: str | None
    events: tuple[KubeEvent, ...]
    traceback: str

    def __str__(self) -> str:
        lines = [f"{self.kind}: {self.summary}"]
        lines += [f"  {d}" for d in self.details]
        if self.fields:
            lines.append("   ".join(f"{k}: {v}" for k, v in self.fields))
        if self.remedy:
            lines.append(f"What to do: {self.remedy}")
        if self.recommend and self.recommend not in self.remedy:
            lines.append(f"Recommend: {self.recommend}")
        if self.events:
            lines.append("Events:")
            lines += [
                f"  {e.type:<8} {e.reason:<12} {e.source}  x{e.count}  {e.message}"
                for e in self.events
            ]
        lines.append(self.traceback.rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = [
            f'<div class="egress-error" style="{_BOX_STYLE}">',
            f'<div style="{_HEAD_STYLE}">✗ {_esc(self.kind)}: {_esc(self.summary)}</div>',
        ]
        if self.details:
            parts.append(
                '<pre style="margin:4px 0;white-space:pre-wrap">'
                + _esc("\n".join(self.details))
                + "</pre>"
            )
        if self.fields:
            cells = "".join(
                f'<tr><th style="text-align:left;padding-right:1em">{_esc(k)}</th>'
                f'<td style="text-align:left"><code>{_esc(v)}</code></td></tr>'
                for k, v in self.fields
            )
            parts.append(f'<table style="margin:4px 0">{cells}</table>')
        if self.remedy:
            parts.append(f"<div><b>What to do:</b> {_rich(self.remedy)}</div>")
        if self.recommend and self.recommend not in self.remedy:
            parts.append(f"<div><b>Recommend:</b> {_rich(self.recommend)}</div>")
        if self.events:
            head = "".join(
                f'<th style="text-align:left">{h}</th>'
                for h in ("Type", "Reason", "From", "Count", "Message")
            )
            rows = "".join(
                "<tr>"
                + "".join(
                    f'<td style="text-align:left">{_esc(str(v))}</td>'
                    for v in (e.type, e.reason, e.source, e.count, e.message)
                )
                + "</tr>"
                for e in self.events
            )
            parts.append(
                '<div style="margin-top:4px"><b>Events</b></div>'
                f'<table style="margin:2px 0"><thead><tr>{head}</tr></thead>'
                f"<tbody>{rows}</tbody></table>"
            )
        parts.append(
            '<details style="margin-top:4px"><summary>Traceback</summary>'
            f'<pre style="white-space:pre-wrap">{_esc(self.traceback)}</pre></details>'
        )
        parts.append("</div>")
        return "".join(parts)


def render(exc: BaseException) -> ErrorBox:
    """The box for ``exc``; any exception works, egress_lib errors say the most."""
    tb = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    if not isinstance(exc, EgressError):
        text = redact(str(exc))
        first, *rest = text.splitlines() or [""]
        return ErrorBox(type(exc).__name__, first, _trim(rest), (), "", None, (), tb)
    remedy = redact(exc.remedy)
    summary = redact(exc.summary)
    rest = redact(str(exc)).splitlines()[1:]
    if remedy and summary.endswith(remedy):  # messages that already say what to do
        summary = summary[: -len(remedy)].rstrip()
    rest = [line for line in rest if line.strip() and line.strip() != remedy]
    return ErrorBox(
        kind=type(exc).__name__,
        summary=summary,
        details=_trim(rest),
        fields=_fields(exc),
        remedy=remedy,
        recommend=exc.recommend if isinstance(exc, CloudApiError) else None,
        events=exc.events,
        traceback=tb,
    )


def _fields(exc: EgressError) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if isinstance(exc, CloudApiError):
        out += [("Code", exc.code)] if exc.code else []
        out += [("HTTP status", str(exc.status_code))] if exc.status_code is not None else []
        out += [("RequestId", exc.request_id)] if exc.request_id else []
        out += [("RAM action", exc.auth_action)] if exc.auth_action else []
    elif isinstance(exc, KubernetesApiError):
        out += [("HTTP status", str(exc.status))] if exc.status is not None else []
        out += [("Reason", exc.reason)] if exc.reason else []
    return tuple((k, redact(v)) for k, v in out)


def _trim(lines: list[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_DETAIL_LINES:
        return tuple(lines)
    more = len(lines) - MAX_DETAIL_LINES
    return (*lines[:MAX_DETAIL_LINES], f"… {more} more line(s): see the traceback")


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _rich(text: str) -> str:
    """Escaped text with `code` spans and links."""
    out = _CODE.sub(r"<code>\1</code>", _esc(text))
    return _URL.sub(r'<a href="\1" target="_blank" rel="noopener">\1</a>', out)


def _handler(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    """IPython's custom exception handler: the box, then a one-line error for the cell."""
    from IPython import display as _display

    display: Any = _display.display  # not annotated
    if value.__traceback__ is None:
        value = value.with_traceback(tb)
    box = render(value)
    display({"text/html": box._repr_html_(), "text/plain": str(box)}, raw=True)
    _tell_the_runner(box)
    # What %tb and %debug read; the normal path sets them too.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    stb = [f"\x1b[0;31m{etype.__name__}\x1b[0m: {box.summary}"]
    # Custom handlers' return values are dropped: _showtraceback sends the "error" message
    # (ename, evalue, this short traceback) that makes the cell, and a headless run, fail.
    shell._showtraceback(etype, value, stb)
    return stb


def _tell_the_runner(box: ErrorBox) -> None:
    """Under ``egress-runbook run``: the error and what to do, on the runner's own stderr.

    The runner prints only ``ename: evalue`` from papermill; the operator at the terminal
    should read the remedy too, without opening the executed notebook.
    """
    from egress_lib.plan import RUN_DIR_ENV
    from egress_lib.progress import STEP_ENV

    stream = sys.__stderr__
    if not os.environ.get(RUN_DIR_ENV) or stream is None:
        return
    prefix = f"{os.environ.get(STEP_ENV, '')} ".lstrip()
    lines = [f"{box.kind}: {box.summary}"]
    lines += [f"{k}: {v}" for k, v in box.fields]
    lines += [f"What to do: {box.remedy}"] if box.remedy else []
    lines += [f"Recommend: {box.recommend}"] if box.recommend else []
    lines += [f"Event: {e.type} {e.reason}: {e.message}" for e in box.events]
    # The runner's stderr may be gone; the notebook still has the box.
    with contextlib.suppress(OSError, ValueError):
        print("\n".join(f"{prefix}{line}" for line in lines), file=stream, flush=True)


def install(shell: Any = None) -> bool:
    """Show egress_lib errors as boxes in ``shell`` (default: the running IPython); idempotent.

    Returns True when the handler is in place. Leaves a shell alone that already has another
    custom exception handler.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            return False
    if getattr(shell, _MARK, False):
        return True
    if tuple(getattr(shell, "custom_exceptions", ())):
        return False
    shell.set_custom_exc((EgressError,), _handler)
    setattr(shell, _MARK, True)
    return True


def in_kernel() -> bool:
    """True inside a Jupyter (ZMQ) kernel; never imports IPython."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return type(shell).__name__ == "ZMQInteractiveShell"
