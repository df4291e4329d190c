"""``pods/log``: the options kubectl logs sends (tailLines, limitBytes, timestamps, previous,
follow), validated as PodLogOptions and applied as the kubelet applies them.

The log source is a callable returning a container's whole log so far; the sandbox's kubelet
does not keep per-line times, so ``timestamps`` uses the container's start time for lines that
existed before the request, and the time a line was first seen when following.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from egress_sandbox.k8s import bodies
from egress_sandbox.k8s.errors import BadRequest
from egress_sandbox.k8s.fielderrors import FieldErrors

Obj = dict[str, Any]
LogSource = Callable[[str, str, "str | None"], str]
FOLLOW_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class LogOptions:
    container: str
    tail_lines: int | None
    limit_bytes: int | None
    timestamps: bool
    previous: bool
    follow: bool


def _int(request: Request, key: str) -> int | None:
    return bodies.query_int(request, key)


def _bool(request: Request, key: str) -> bool:
    raw = request.args.get(key, "false")
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0", ""):
        return False
    raise BadRequest(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def container_of(pod: Obj, container: str | None) -> str:
    """The container a log request means: the one named, or the pod's only one (else 400).

    The kubelet's log source applies the same rule to direct callers.
    """
    name = pod["metadata"]["name"]
    containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
    if container is None:
        if len(containers) != 1:
            raise BadRequest(
                f"a container name must be specified for pod {name}, choose one of: "
                f"[{' '.join(containers)}]"
            )
        return containers[0]
    if container not in containers:
        raise BadRequest(f"container {container} is not valid for pod {name}")
    return container


def parse(request: Request, pod: Obj) -> LogOptions:
    """The request's PodLogOptions; 400/422 exactly where the apiserver refuses them."""
    name = pod["metadata"]["name"]
    container = container_of(pod, request.args.get("container"))
    opts = LogOptions(
        container=container,
        tail_lines=_int(request, "tailLines"),
        limit_bytes=_int(request, "limitBytes"),
        timestamps=_bool(request, "timestamps"),
        previous=_bool(request, "previous"),
        follow=_bool(request, "follow"),
    )
    errs = FieldErrors()
    if opts.tail_lines is not None and opts.tail_lines < 0:
        errs.invalid("tailLines", opts.tail_lines, "must be greater than or equal to 0")
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        errs.invalid("limitBytes", opts.limit_bytes, "must be greater than 0")
    errs.raise_if_any("PodLogOptions", "", name)
    if opts.previous:
        # The sandbox's containers never restart, so there is never a previous instance.
        raise BadRequest(f'previous terminated container "{container}" in pod "{name}" not found')
    return opts


def _status(pod: Obj | None, container: str) -> Obj:
    for cs in (pod or {}).get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return dict(cs)
    return {}


def _started_at(pod: Obj, container: str) -> str:
    state = _status(pod, container).get("state") or {}
    for key in ("running", "terminated"):
        if (state.get(key) or {}).get("startedAt"):
            return str(state[key]["startedAt"])
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_nano() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    frac = f"{now.microsecond * 1000:09d}".rstrip("0")  # RFC3339Nano drops trailing zeros
    return now.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _stamp(text: str, ts: str) -> str:
    return "".join(f"{ts} {line}" for line in text.splitlines(keepends=True))


def _tail(text: str, n: int | None) -> str:
    if n is None:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(lines[-n:]) if n else ""


def render(text: str, pod: Obj, opts: LogOptions) -> str:
    """The body of a non-follow request: tail, then timestamps, then the byte limit."""
    out = _tail(text, opts.tail_lines)
    if opts.timestamps:
        out = _stamp(out, _started_at(pod, opts.container))
    if opts.limit_bytes is not None:
        out = out.encode()[: opts.limit_bytes].decode(errors="ignore")
    return out


def follow(
    source: Callable[[], str],
    current_pod: Callable[[], Obj | None],
    first: Obj,
    opts: LogOptions,
    stopping: threading.Event,
) -> Iterator[bytes]:
    """Stream the log until the container terminates, the pod goes, or the limit is hit."""
    sent_chars = 0
    sent_tail = ""  # the end of what was sent: finds our place again in a log cut at the front
    budget = opts.limit_bytes
    initial = True
    while not stopping.is_set():
        pod = current_pod()
        done = pod is None or "terminated" in (_status(pod, opts.container).get("state") or {})
        text = source() if pod is not None else ""
        if sent_tail and text[sent_chars - len(sent_tail) : sent_chars] != sent_tail:
            # A bounded log dropped its oldest lines: resume after the last text we sent. The
            # first match is ours (what was sent comes before anything new); when the cut ate
            # into that text too, what is left of it starts the log.
            at = text.find(sent_tail)
            if at >= 0:
                sent_chars = at + len(sent_tail)
            else:
                sent_chars = next(
                    (
                        k
                        for k in range(len(sent_tail) - 1, 0, -1)
                        if text.startswith(sent_tail[-k:])
                    ),
                    0,
                )
        # Only whole lines are sent while the container runs; the rest waits for its newline.
        upto = len(text) if done else text.rfind("\n", sent_chars) + 1
        chunk = text[sent_chars:upto] if upto > sent_chars else ""
        if chunk:
            sent_chars = upto
            sent_tail = text[max(0, upto - 256) : upto]
            if initial:
                chunk = _tail(chunk, opts.tail_lines)
            if opts.timestamps:
                chunk = _stamp(
                    chunk, _started_at(first, opts.container) if initial else _now_nano()
                )
            data = chunk.encode()
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            if data:
                yield data
            if budget is not None and budget <= 0:
                return
        initial = False
        if done:
            return
        time.sleep(FOLLOW_POLL_SECONDS)
