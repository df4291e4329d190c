"""The contract of every step: ``plan(session) -> Plan``, ``apply(session, plan)``.

:func:`carry_out` is the one place that enforces it: approval is checked against the plan
given; the runner's approved plan (if any) bounds it; conflicts refuse; a fresh plan must
match the given one or :class:`PlanStale` names what changed; then the step runs under the
cluster lock and its result is saved for the run record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from egress_lib import kube, ownership
from egress_lib.concurrency import ordered_map
from egress_lib.errors import NotApproved, PlanConflict, PlanStale
from egress_lib.plan import APPROVED_PLAN_FILE, CHANGING, COMPARED, RUN_DIR_ENV, Change, Plan
from egress_lib.tables import Table

if TYPE_CHECKING:
    from egress_lib.clients import Session
    from egress_lib.plan import StepResult


def require_approval(session: Session, plan: Plan) -> None:
    """Raise :class:`NotApproved` if the plan writes something and approve is false."""
    if plan.needs_approval and not session.params.approve:
        n = plan.change_count
        what = f"would make {n} change(s)" if n else "would create temporary test pods"
        named = changes_named(plan)
        raise NotApproved(
            f"{plan.step} {what}{f' ({named})' if named else ''} but approve is false: nothing "
            "was changed. Review the plan, then set approve = True (or run `egress-runbook run "
            f"PARAMS --approve`).\n{plan}"
        )


def changes_named(plan: Plan, limit: int = 4) -> str:
    """The plan's writes in a few words: ``recreate X`` for a delete then create of one object."""
    by_ref: dict[str, list[str]] = {}
    for c in plan.changes:
        if c.action in CHANGING:
            by_ref.setdefault(c.ref, []).append(c.action)
    words = [
        f"recreate {ref}" if actions == ["delete", "create"] else f"{' then '.join(actions)} {ref}"
        for ref, actions in by_ref.items()
    ]
    more = f", and {len(words) - limit} more" if len(words) > limit else ""
    return ", ".join(words[:limit]) + more


def approved_fingerprints() -> dict[str, list[str]] | None:
    """The runner's approved plan (step -> change fingerprints), or None outside a run."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return None
    path = os.path.join(run_dir, APPROVED_PLAN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data: Any = json.load(f)
    except FileNotFoundError:
        return None
    return {str(k): [str(x) for x in v] for k, v in dict(data).items()}


def check_within_approved(plan: Plan) -> None:
    """Under the runner: every change of ``plan`` must be one the operator approved."""
    approved = approved_fingerprints()
    if approved is None:
        return
    allowed = set(approved.get(plan.step, []))
    extra = [
        f"{c.ref}: {c.action} ({c.detail}) was not in the approved plan"
        for c in plan.changes
        if c.action in CHANGING and c.fingerprint not in allowed
    ]
    if extra:
        raise PlanStale(plan.step, extra)


def stale_differences(planned: Plan, fresh: Plan) -> list[str]:
    """What differs between the plan given and one computed now (empty = still valid).

    Changes are compared per object; an object may have several (a recreate is a delete
    then a create), and then all of them must match, in order.
    """

    def keyed(plan: Plan) -> dict[str, list[Change]]:
        out: dict[str, list[Change]] = {}
        for c in plan.changes:
            if c.action in COMPARED:
                out.setdefault(c.ref, []).append(c)
        return out

    def shown(changes: list[Change]) -> str:
        return " then ".join(f"{c.action} ({c.detail})" for c in changes)

    before, now = keyed(planned), keyed(fresh)
    out: list[str] = []
    for ref in sorted(set(before) | set(now)):
        b, n = before.get(ref, []), now.get(ref, [])
        if [c.fingerprint for c in b] == [c.fingerprint for c in n]:
            continue
        was = shown(b) if b else "not in the plan"
        is_ = shown(n) if n else "not needed any more"
        if len(b) == 1 and len(n) == 1 and b[0].action == n[0].action:
            is_ = f"{n[0].action} with a different object ({n[0].detail})"
        out.append(f"{ref}: planned {was}; now {is_}")
    return out


def carry_out(
    session: Session,
    plan: Plan,
    replan: Callable[[Session], Plan] | None,
    run: Callable[[Plan], StepResult],
) -> StepResult:
    """Apply exactly ``plan`` with ``run``, after every check; save the result.

    ``replan`` recomputes the plan (reads only) to detect a stale one; None when the plan
    was computed just now.
    """
    from egress_lib import lock

    require_approval(session, plan)
    check_within_approved(plan)
    if plan.conflicts:
        raise PlanConflict(plan.step, [f"{c.ref}: {c.detail}" for c in plan.conflicts])

    def check_fresh() -> None:
        if replan is not None:
            with kube.without_dry_runs():  # fingerprints hold no dry-run answer
                fresh = replan(session)
            stale = stale_differences(plan, fresh)
            if stale:
                raise PlanStale(plan.step, stale)

    check_fresh()  # before the lock, so that a stale plan writes nothing, not even the Lease
    if not plan.needs_approval:
        result = run(plan)  # nothing to write: reads and waits need no lock
    else:
        with lock.ensure(session, holder(session)):
            if not lock_is_outer(session):
                check_fresh()  # the world may have changed while the lock was taken
            result = run(plan)
    result.plan = plan
    result.save()
    return result


def lock_is_outer(session: Session) -> bool:
    """True under the runner: it took the lock before planning, so nothing moved since."""
    from egress_lib.clients import RUN_ID_ENV

    return os.environ.get(RUN_ID_ENV) == session.run_id


def holder(session: Session) -> Any:
    """This process as the lock's holder; the run ID is what makes it re-entrant."""
    import getpass
    import socket

    from egress_lib.lock import Holder

    return Holder(session.run_id, getpass.getuser(), socket.gethostname(), os.getpid())


def plan_or_refuse(session: Session, plan: Plan | None, make: Callable[[Session], Plan]) -> Plan:
    """``plan``, or a fresh one when approve is true (``apply(session)`` in one go)."""
    if plan is not None:
        return plan
    fresh = make(session)
    require_approval(session, fresh)
    return fresh


def plan_objects(session: Session, kind: str, desired: list[dict[str, Any]]) -> list[Change]:
    """A change per desired object, plus a delete per owned ``kind`` no longer desired.

    Like Terraform's plan, an object the runbook made that the parameters no longer name
    (a destination removed) is shown as a delete and removed on apply.
    """
    p = session.params
    # One LIST of the kind instead of a GET per object: the objects to compare with, the names
    # held by someone else (conflicts) and our leftovers, all from one answer.
    live = {o["metadata"]["name"]: o for o in kube.list_all(session, kind, p.namespace)}
    # The dry runs, one per object, go side by side.
    changes = ordered_map(
        lambda o: kube.plan_object(session, o, live.get(o["metadata"]["name"])), desired
    )
    names = {o["metadata"]["name"] for o in desired}
    changes += [
        kube.plan_delete(session, o, "ours, but no destination names it any more")
        for name, o in live.items()
        if name not in names and ownership.owner(o, p) == "ours"
    ]
    return changes


def apply_kube_changes(session: Session, plan: Plan, kinds: tuple[str, ...]) -> list[Change]:
    """Carry out the plan's Kubernetes creates/updates/deletes of ``kinds``, in plan order."""
    applied: list[Change] = []
    for batch in _batches(plan.changes, kinds):
        if batch[0].action not in CHANGING:
            applied += batch
            continue
        done: list[Change | None] = [None] * len(batch)

        def one(i: int, batch: list[Change] = batch, done: list[Change | None] = done) -> None:
            done[i] = kube.apply_change(session, batch[i])

        try:
            ordered_map(one, range(len(batch)))
        except kube.StaleObject as e:
            written = [c.ref for c in applied + [d for d in done if d] if c.action in CHANGING]
            raise PlanStale(plan.step, [str(e)], written=written) from e
        applied += [d for d in done if d is not None]
    return applied


def _batches(changes: list[Change], kinds: tuple[str, ...]) -> list[list[Change]]:
    """Runs of consecutive changes of one kind and action: independent objects.

    Plan order holds between runs (a recreate's delete comes before its create); only the
    objects within a run are applied side by side. Reads and waits are left out, but for
    ``unchanged`` and ``adopt``, which apply reports as they are.
    """

    def key(c: Change) -> tuple[str, str]:
        return c.kind, c.action if c.action in CHANGING else ""

    out: list[list[Change]] = []
    for c in changes:
        if c.kind not in kinds or c.action not in (*CHANGING, "unchanged", "adopt"):
            continue
        if out and key(out[-1][0]) == key(c):
            out[-1].append(c)
        else:
            out.append([c])
    return out


def rows_table(
    rows: list[dict[str, Any]], fields: Mapping[str, str], *, empty: str = "none"
) -> Table:
    """A table with one row per API row; ``fields`` maps each column to its wire key."""
    return Table(list(fields), [[r.get(key) for key in fields.values()] for r in rows], empty=empty)
