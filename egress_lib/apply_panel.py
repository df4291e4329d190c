"""The Apply and Cancel buttons below a plan in JupyterLab: the click is the approval.

Only :func:`egress_lib.notebook.apply` makes one, and only when widgets can be seen
(:func:`egress_lib.kernel.widgets_enabled`); papermill, nbval and the runner never get one.
A click applies exactly the plan shown (the step refuses with ``PlanStale`` if the cluster
changed since), shows the outcome, writes a run record (``command: notebook``) naming who
clicked and when, and disables the buttons: one plan, one apply.
"""

from __future__ import annotations

import dataclasses
import json
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from egress_lib import kernel, records
from egress_lib.kernel import JUPYTER_SESSION_ENV

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.plan import Plan

# How the record names the approval, and what the button says before and after.
VIA = "Apply button in JupyterLab"


def approved_session(session: Session) -> Session:
    """The same clients with ``approve`` true: what a click grants, for this one apply."""
    params = session.params.model_copy(update={"approve": True})
    return dataclasses.replace(session, params=params)


class ApplyPanel:
    """A plan's Apply/Cancel buttons, the outcome line and an output area for the apply.

    Until a click it stands for ``pending`` (the "not applied" result); afterwards for what
    the apply returned, so later cells read ``result.objects`` and the like either way.
    """

    def __init__(
        self,
        session: Session,
        plan: Plan,
        run: Callable[[Session, Plan], Any],
        pending: Any,
        *,
        then: Callable[[Session], object] | None = None,
        label: str = "",
    ) -> None:
        import ipywidgets as widgets

        self.session = session
        self.plan = plan
        self._run = run
        self._then = then
        self.result: Any = None
        self._pending = pending
        self.record: records.RunRecord | None = None
        n = plan.change_count
        label = label or (f"Apply {n} change(s)" if n else "Apply")
        self.apply_button = widgets.Button(
            description=label,
            layout=widgets.Layout(width="auto"),
            button_style="primary",
            icon="check",
            tooltip="Apply exactly the plan above (refused if the cluster changed since)",
        )
        self.apply_button.add_class("egress-apply")
        self.cancel_button = widgets.Button(description="Cancel", icon="times")
        self.cancel_button.add_class("egress-cancel")
        self.status = widgets.HTML(
            "Review the plan above. <b>Apply</b> carries out exactly that plan, or refuses if "
            "the cluster changed since; nothing is changed until you click."
        )
        self.output = widgets.Output()
        self.widget = widgets.VBox(
            [widgets.HBox([self.apply_button, self.cancel_button]), self.status, self.output]
        )
        self.widget.add_class("egress-apply-panel")
        self.apply_button.on_click(lambda _b: self.click_apply())
        self.cancel_button.on_click(lambda _b: self.click_cancel())

    # ---- what later cells read ---------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called for names the panel lacks: the current result's (objects, tables, ...).
        if name.startswith("_"):
            raise AttributeError(name)
        current = self.__dict__.get("result") or self.__dict__.get("_pending")
        return getattr(current, name)

    def _ipython_display_(self) -> None:
        kernel.display(self.widget)

    def __repr__(self) -> str:
        return repr(self.result if self.result is not None else self._pending)

    # ---- the buttons -------------------------------------------------------------------------

    def _disable(self) -> None:
        self.apply_button.disabled = True
        self.cancel_button.disabled = True

    def click_cancel(self) -> None:
        """Nothing is applied; the buttons are disabled."""
        if self.apply_button.disabled:
            return
        self._disable()
        who = records.approval("Cancel button")
        self.cancel_button.button_style = "warning"
        self.status.value = (
            f"Cancelled by {_esc(who['by'])} at {_esc(who['at'])}: nothing was changed. "
            "Run the cell again for a new plan."
        )

    def click_apply(self) -> None:
        """Apply exactly the plan, show the outcome, record who clicked, disable the buttons."""
        if self.apply_button.disabled:
            return  # a second click (or one queued behind the first) does nothing
        self._disable()
        who = records.approval(VIA)
        self.apply_button.description = "Applying…"
        self.status.value = (
            f"Applying the plan, approved by {_esc(who['by'])} at {_esc(who['at'])}…"
        )
        record = self._start_record(who)
        with self.output:  # the wait displays and the result land below the buttons
            try:
                result = self._run(approved_session(self.session), self.plan)
                kernel.display(result)
                # The cells below ran before the click: show what the step read back here.
                for name in getattr(result, "tables", None) or {}:
                    kernel.display(result.table(name))
                if self._then is not None:
                    kernel.display(self._then(self.session))
            except Exception as e:  # noqa: BLE001  (any failure is shown in the panel)
                # Caught inside the Output: it would otherwise print the long traceback.
                self._failed(record, who, e)
                return
        self.result = result
        self._finish_record(record, result)
        self.apply_button.description = "Applied"
        self.apply_button.button_style = "success"
        where = f" Run record: {_esc(record.out_dir)}." if record else ""
        self.status.value = (
            f"✓ Applied by {_esc(who['by'])} at {_esc(who['at'])}: {_esc(_outcome(result))}.{where}"
        )

    def _failed(self, record: records.RunRecord | None, who: dict[str, str], e: Exception) -> None:
        kernel.display(_error_view(e))
        self.apply_button.description = "Failed"
        self.apply_button.button_style = "danger"
        first = (str(e).splitlines() or [type(e).__name__])[0]
        self.status.value = (
            f"✗ The apply approved by {_esc(who['by'])} at {_esc(who['at'])} failed: "
            f"{_esc(first.rstrip('.'))}. See below; run the notebook again for a new plan."
        )
        if record is not None:
            record.update_step(self.plan.step, status="failed", error=f"{type(e).__name__}: {e}")
            record.finish("failed", failed_step=self.plan.step, message=first)

    # ---- the run record ----------------------------------------------------------------------

    def _start_record(self, who: dict[str, str]) -> records.RunRecord | None:
        params = self.session.params
        try:
            record = records.new_run(
                records.runs_root(),
                params.cluster_name,
                command="notebook",
                parameters=params.to_injectable(),
                parameters_file=os.environ.get(JUPYTER_SESSION_ENV),
            )
        except OSError:
            return None  # a read-only folder must not stop an approved apply; the panel says so
        record.approval = who
        record.add_step(
            self.plan.step,
            "running",
            plan=[c.to_dict() for c in self.plan.changes],
            output=os.environ.get(JUPYTER_SESSION_ENV),
        )
        return record

    def _finish_record(self, record: records.RunRecord | None, result: Any) -> None:
        if record is None:
            return
        data: dict[str, Any] = result.to_dict() if hasattr(result, "to_dict") else {}
        with_ok = getattr(result, "ok", True)
        Path(record.out_dir, f"{self.plan.step}.result.json").write_text(
            json.dumps(records.scrub(data), indent=2, default=str) + "\n", encoding="utf-8"
        )
        record.update_step(
            self.plan.step,
            status="ok" if with_ok else "failed",
            applied=data.get("changes_applied") or [],
            request_ids=data.get("request_ids") or [],
        )
        record.finish("ok" if with_ok else "failed", message=_outcome(result))


def _outcome(result: Any) -> str:
    applied = getattr(result, "changes_applied", None)
    if applied is not None:
        from egress_lib.plan import CHANGING

        n = sum(c.action in CHANGING for c in applied)
        return f"{n} change(s) applied" if n else "nothing needed changing"
    summary = getattr(result, "summary", None)
    if isinstance(summary, str):
        return summary
    return "done" if getattr(result, "ok", None) else "see the result below"


def _error_view(e: Exception) -> object:
    from egress_lib import error_display
    from egress_lib.errors import EgressError

    if isinstance(e, EgressError):
        return error_display.render(e)
    return _Traceback("".join(traceback.format_exception(e)))


@dataclasses.dataclass(frozen=True)
class _Traceback:
    text: str

    def __repr__(self) -> str:
        return self.text


def _esc(text: str) -> str:
    import html

    return html.escape(text)
