"""``kubectl logs -f`` over a bounded log: lines dropped at the front never skip new ones."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from egress_sandbox.k8s import podlog


def _pod(state: str) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": "echo", "state": {state: {}}}]}}


def test_follow_resumes_after_the_last_line_sent_when_the_log_is_cut_at_the_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs = ["a\nb\n", "b\nc\nd\n", "d\ne\n", "d\ne\nf\n"]  # as a 1 MiB cap drops old lines
    polls = iter(logs)
    current = {"text": ""}

    def source() -> str:
        current["text"] = next(polls, current["text"])
        return current["text"]

    def pod() -> dict[str, Any]:
        # Running until every version of the log was read, then terminated.
        return _pod("terminated" if current["text"] == logs[-1] else "running")

    opts = podlog.LogOptions("echo", None, None, False, False, True)
    monkeypatch.setattr(podlog, "FOLLOW_POLL_SECONDS", 0.0)
    sent = b"".join(podlog.follow(source, pod, _pod("running"), opts, threading.Event()))
    assert sent.decode() == "a\nb\nc\nd\ne\nf\n"
