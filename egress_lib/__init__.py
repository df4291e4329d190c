"""egress_lib: make an MSE cloud-native gateway the egress gateway of an ACK cluster.

Typical use::

    from egress_lib import connect, load_parameters, steps
    session = connect(load_parameters("parameters/sandbox.yaml"))
    print(steps.gateway.plan(session))
    steps.gateway.apply(session)
"""

from egress_lib import manifests, steps
from egress_lib.clients import Session, connect
from egress_lib.cloud import call
from egress_lib.errors import (
    CloudApiError,
    CloudConnectionError,
    EgressError,
    KubernetesApiError,
    NotApproved,
    ParameterError,
    PreconditionFailed,
    Problem,
    WaitTimeout,
)
from egress_lib.kube import ApplyOutcome, apply, delete, plan_apply, read_back, wait_for
from egress_lib.manifests import to_yaml
from egress_lib.parameters import Destination, Parameters, load_parameters
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.show import frame, yaml_block
from egress_lib.steps.ingress import ClbAddress
from egress_lib.steps.preflight import Check, Facts
from egress_lib.steps.verify import VerifyResult

__all__ = [
    "ApplyOutcome",
    "Change",
    "Check",
    "ClbAddress",
    "CloudApiError",
    "CloudConnectionError",
    "Destination",
    "EgressError",
    "Facts",
    "KubernetesApiError",
    "NotApproved",
    "ParameterError",
    "Parameters",
    "Plan",
    "PreconditionFailed",
    "Problem",
    "Session",
    "StepResult",
    "VerifyResult",
    "WaitTimeout",
    "apply",
    "call",
    "connect",
    "delete",
    "frame",
    "load_parameters",
    "manifests",
    "plan_apply",
    "read_back",
    "steps",
    "to_yaml",
    "wait_for",
    "yaml_block",
]
