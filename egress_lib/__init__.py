"""egress_lib: make an MSE cloud-native gateway the egress gateway of an ACK cluster.

Typical use::

    from egress_lib import connect, load_parameters, steps
    session = connect(load_parameters("parameters/sandbox.yaml"))
    plan = steps.gateway.plan(session)   # reads only
    print(plan)                          # review it: the objects, the diffs, the requests
    steps.gateway.apply(session, plan)   # exactly that plan, or PlanStale; needs approve

The public API is what ``__all__`` lists: the entry points, the step modules, the result
types and the exceptions. Lower-level helpers stay in their modules (``egress_lib.kube``,
``egress_lib.cloud``, ``egress_lib.inventory``) and may change between versions.

Inside a Jupyter kernel, importing the package makes egress_lib errors show as a short box
with the remedy, the traceback folded below it (:mod:`egress_lib.error_display`).
"""

from egress_lib import error_display, manifests, notebook, steps
from egress_lib.clients import Session, connect
from egress_lib.errors import (
    CloudApiError,
    CloudConnectionError,
    EgressError,
    KubernetesApiError,
    LockHeld,
    NotApproved,
    ParameterError,
    PlanConflict,
    PlanStale,
    PreconditionFailed,
    Problem,
    StepFailed,
    TargetUnavailable,
    WaitTimeout,
)
from egress_lib.parameters import Destination, Parameters, load_parameters
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.show import yaml_block
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.preflight import Check, Facts
from egress_lib.steps.verify import VerifyResult

if error_display.in_kernel():
    error_display.install()

__all__ = [
    "Change",
    "Check",
    "ClbAddress",
    "CloudApiError",
    "CloudConnectionError",
    "Destination",
    "EgressError",
    "Facts",
    "KubernetesApiError",
    "LockHeld",
    "NotApproved",
    "ParameterError",
    "Parameters",
    "Plan",
    "PlanConflict",
    "PlanStale",
    "PreconditionFailed",
    "Problem",
    "Session",
    "StepFailed",
    "StepResult",
    "TargetUnavailable",
    "VerifyResult",
    "WaitTimeout",
    "connect",
    "load_parameters",
    "manifests",
    "notebook",
    "steps",
    "yaml_block",
]
