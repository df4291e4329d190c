"""The wait displays: headless lines that keep coming without events, and the line's shape."""

from __future__ import annotations

import io
import time

import pytest

from egress_lib import progress


def test_duration_reads_short() -> None:
    assert [progress.duration(s) for s in (0, 45, 60, 72, 900, 3720)] == [
        "0s",
        "45s",
        "1m",
        "1m12s",
        "15m",
        "1h02m",
    ]


def test_headless_lines_name_the_object_state_elapsed_and_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(progress.STEP_ENV, "02")
    out = io.StringIO()
    with progress.LogLines("MseIngressConfig egress-gateway", 900, out) as wait:
        wait.set_postfix_str("Pending")
        wait.set_postfix_str("Pending")  # the same state again: no new line
        wait.set_postfix_str("Running")
    lines = out.getvalue().splitlines()
    assert lines == [
        "02 waiting for MseIngressConfig egress-gateway: Pending 0s / 15m",
        "02 waiting for MseIngressConfig egress-gateway: Running 0s / 15m",
        "02 waiting for MseIngressConfig egress-gateway: done 0s / 15m",
    ]


def test_headless_lines_keep_coming_while_no_event_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A watch can go a minute without an event; the operator still sees the wait is alive.
    monkeypatch.setattr(progress, "HEADLESS_EVERY_SECONDS", 0.05)
    monkeypatch.setattr(progress, "TICK_SECONDS", 0.01)
    out = io.StringIO()
    with progress.LogLines("SnatEntry snat-1", 300, out) as wait:
        wait.set_postfix_str("Pending")
        time.sleep(0.5)  # no event at all
    pending = [line for line in out.getvalue().splitlines() if ": Pending" in line]
    assert len(pending) >= 3, out.getvalue()


def test_a_wait_that_ends_at_once_prints_nothing() -> None:
    out = io.StringIO()
    with progress.LogLines("Deployment x", 60, out):
        pass
    assert out.getvalue() == ""


def test_outside_a_kernel_the_display_is_a_terminal_bar_that_stays_quiet_off_a_tty() -> None:
    with progress.waiting_bar("the gateway", what="MseIngressConfig g", timeout=10) as wait:
        wait.set_postfix_str("Pending")
        assert type(wait).__name__ == "_TerminalBar"
