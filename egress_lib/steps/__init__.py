"""The runbook's steps, in order; each module has ``plan(session)`` and ``apply(session, plan)``.

:data:`RUNBOOK` is the one list of the steps every run has: the runner, the CLI and the docs
take it from here. :data:`POLICIES` (07) follows them when the parameters declare a policy
(:func:`applicable`); :data:`FULL` is both. Each step's notebook is
``notebooks/<name>.ipynb``. Teardown is separate: never part of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from egress_lib.steps import (
    controller,
    egress_policies,
    gateway,
    ingress,
    preflight,
    services,
    snat,
    teardown,
    verify,
)

if TYPE_CHECKING:
    from egress_lib.parameters import Parameters


@dataclass(frozen=True)
class Step:
    """One step: its name (= its notebook's), its module and a one-line summary."""

    name: str
    module: ModuleType
    summary: str

    @property
    def number(self) -> str:
        return self.name.split("-", 1)[0]


RUNBOOK: tuple[Step, ...] = (
    Step(preflight.STEP, preflight, "check parameters, cloud facts and permissions"),
    Step(controller.STEP, controller, "install the MSE Ingress Controller add-on"),
    Step(gateway.STEP, gateway, "MseIngressConfig (internal CLB only) and IngressClass"),
    Step(snat.STEP, snat, "SNAT entry for the gateway's vSwitch"),
    Step(services.STEP, services, "one ExternalName Service per destination"),
    Step(ingress.STEP, ingress, "Ingress routes; the CLB address from their status"),
    Step(
        verify.STEP,
        verify,
        "curl each destination through the gateway from a pod; the direct path is blocked",
    ),
)
POLICIES = Step(
    egress_policies.STEP, egress_policies, "apply the egress policies and check each from pods"
)
FULL: tuple[Step, ...] = (*RUNBOOK, POLICIES)
TEARDOWN = Step(teardown.STEP, teardown, "delete what the runbook created, in reverse order")
ORDER = tuple(s.module for s in RUNBOOK)


def applicable(params: Parameters, steps: Sequence[Step]) -> tuple[Step, ...]:
    """``steps`` without 07 when the parameters declare no policy (runs stay as before)."""
    return tuple(s for s in steps if s is not POLICIES or params.has_policies())


def find(ref: str, *, include_teardown: bool = False) -> Step:
    """A step by name ("03-configure-snat"), number ("03") or module name ("snat")."""
    candidates = (*FULL, TEARDOWN) if include_teardown else FULL
    for s in candidates:
        if ref in (s.name, s.number, s.module.__name__.rsplit(".", 1)[-1]):
            return s
    names = ", ".join(s.name for s in candidates)
    raise ValueError(f"no step {ref!r}; the steps are: {names}")


__all__ = [  # noqa: RUF022 - plain sorted(), as tests/unit/test_public_api.py checks
    "FULL",
    "ORDER",
    "POLICIES",
    "RUNBOOK",
    "Step",
    "TEARDOWN",
    "applicable",
    "controller",
    "egress_policies",
    "find",
    "gateway",
    "ingress",
    "preflight",
    "services",
    "snat",
    "teardown",
    "verify",
]
