"""The runbook's steps, in order; each module has ``plan(session)`` and ``apply(session)``."""

from egress_lib.steps import (
    controller,
    gateway,
    ingress,
    preflight,
    services,
    snat,
    teardown,
    verify,
)

ORDER = (preflight, controller, gateway, snat, services, ingress, verify)

__all__ = [
    "ORDER",
    "controller",
    "gateway",
    "ingress",
    "preflight",
    "services",
    "snat",
    "teardown",
    "verify",
]
