"""What a notebook's apply cell calls: apply when approved, otherwise say so and change nothing.

Outside notebooks, ``steps.<step>.apply`` raises :class:`~egress_lib.errors.NotApproved`; a
notebook run plan-only (JupyterLab without ``approve = True``, or papermill with a parameters
file that does not approve) should instead show its plans to the end, so the apply cell gets
an empty result that says "not applied" and the cells after it show nothing to read.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from egress_lib.plan import Plan, StepResult

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.steps.verify import VerifyResult


def approved(session: Session, plan: Plan) -> bool:
    """True when ``plan`` may be applied: it writes nothing, or approve is true."""
    return not plan.needs_approval or session.params.approve


def apply(step: ModuleType, session: Session, plan: Plan) -> StepResult:
    """``step.apply(session, plan)`` if approved; else a "not applied" result (no write)."""
    if approved(session, plan):
        result: StepResult = step.apply(session, plan)
        return result
    why = (
        f"{plan.change_count} change(s) not applied: approve is false. Review the plan, "
        "set approve = True in the parameters cell and run the notebook again."
    )
    return StepResult(plan.step, [], [], {}, [why], plan, applied=False)


def verify(session: Session, plan: Plan) -> VerifyResult:
    """``steps.verify.run`` if approved; else an empty result marked as not run."""
    from egress_lib.steps import verify as step

    if approved(session, plan):
        return step.run(session, plan)
    return step.VerifyResult(ran=False)
