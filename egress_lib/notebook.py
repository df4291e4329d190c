"""What a notebook's apply cell calls: apply when approved, else offer an Apply button or say so.

Outside notebooks, ``steps.<step>.apply`` raises :class:`~egress_lib.errors.NotApproved`; a
notebook run plan-only should instead show its plans to the end:

- In JupyterLab (:func:`egress_lib.kernel.widgets_enabled`) the apply cell shows **Apply** and
  **Cancel** buttons below the plan (:class:`~egress_lib.apply_panel.ApplyPanel`); a click
  applies exactly that plan.
- Headless (papermill, nbval, the runner) the cell gets an empty result that says
  "not applied", and the cells after it show nothing to read. No widget is created.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from egress_lib import kernel
from egress_lib.plan import Plan, StepResult

if TYPE_CHECKING:
    from egress_lib.clients import Session

Then = Callable[["Session"], object]


def approved(session: Session, plan: Plan) -> bool:
    """True when ``plan`` may be applied: it writes nothing, or approve is true."""
    return not plan.needs_approval or session.params.approve


def apply(step: ModuleType, session: Session, plan: Plan, *, then: Then | None = None) -> Any:
    """``step.apply(session, plan)`` if approved; else Apply buttons, or "not applied".

    ``then(session)`` is shown after an apply from the button (e.g. the CLB table), since the
    cells below ran before the click.
    """
    if approved(session, plan):
        result: StepResult = step.apply(session, plan)
        return result
    if kernel.widgets_enabled():
        why = f"{plan.change_count} change(s) not applied yet: click Apply to apply this plan."
        pending = StepResult(plan.step, [], [], {}, [why], plan, applied=False)
        return _panel(session, plan, step.apply, pending, then)
    why = (
        f"{plan.change_count} change(s) not applied: approve is false. Review the plan, "
        "set approve = True in the parameters cell and run the notebook again."
    )
    return StepResult(plan.step, [], [], {}, [why], plan, applied=False)


def verify(session: Session, plan: Plan, *, then: Then | None = None) -> Any:
    """``steps.verify.run`` if approved; else a button that starts the pods, or "not run"."""
    from egress_lib.steps import verify as step

    if approved(session, plan):
        return step.run(session, plan)
    if kernel.widgets_enabled():
        return _panel(session, plan, step.run, step.VerifyResult(ran=False), then, "Run the test")
    return step.VerifyResult(ran=False)


def _panel(
    session: Session,
    plan: Plan,
    run: Callable[[Session, Plan], Any],
    pending: object,
    then: Then | None,
    label: str = "",
) -> Any:
    from egress_lib.apply_panel import ApplyPanel

    return ApplyPanel(session, plan, run, pending, then=then, label=label)
