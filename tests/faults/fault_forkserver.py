"""A process that has imported the runbook once and forks a runbook run per request.

The matrix kills a run half-way, so the run must be a process of its own; starting Python and
importing the SDKs and the kubernetes client costs seconds each time, a fork of this process
milliseconds. Requests are JSON lines on stdin::

    {"params": ".../sandbox.yaml", "overrides": {...}, "step": "03", "env": {...}, "log": "..."}

and each is answered with ``{"pid": N}``: the forked run, which applies the step's plan with
approve true and writes its output, and ``exit N`` last, to ``log``. Closing stdin ends the
server. Children are reaped by the system (SIGCHLD ignored), so a test tells a finished run
from a running one by its pid alone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any


def _warm() -> None:
    # What a run imports on its way to its first call: paid once, here.
    import alibabacloud_cs20151215.client  # noqa: F401
    import alibabacloud_mse20190531.client  # noqa: F401
    import alibabacloud_ram20150501.client  # noqa: F401
    import alibabacloud_slb20140515.client  # noqa: F401
    import alibabacloud_vpc20160428.client  # noqa: F401
    import kubernetes.client
    import kubernetes.config  # noqa: F401

    import egress_lib.clients  # noqa: F401
    from egress_lib import steps  # noqa: F401


def _run(request: dict[str, Any]) -> int:
    from egress_lib import connect, load_parameters, steps

    os.environ.update({str(k): str(v) for k, v in request["env"].items()})
    step = steps.find(str(request["step"]), include_teardown=True)
    overrides = dict(request["overrides"])
    session = connect(load_parameters(Path(str(request["params"])), overrides))
    step.module.apply(session, step.module.plan(session))
    return 0


def _child(request: dict[str, Any]) -> None:
    fd = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 1
    try:
        code = _run(request)
    except BaseException:  # noqa: BLE001 - the log says what happened
        traceback.print_exc()
    finally:
        print(f"exit {code}", flush=True)
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    _warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _child(request)
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
