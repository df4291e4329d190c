"""Step 01: install the MSE Ingress Controller add-on (CS InstallClusterAddons).

If no IngressClass ``mse`` exists when the add-on installs, it creates a default
internet-facing gateway ``mse-ingress-premium-<cluster>``; so the runbook's own IngressClass
``mse`` (bound to our MseIngressConfig) is created first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from egress_lib import inventory, kube, manifests, remedies
from egress_lib.cloud import call, call_with_id
from egress_lib.errors import CloudApiError, PreconditionFailed, StepFailed
from egress_lib.manifests import to_yaml
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.show import YamlBlock, yaml_block
from egress_lib.steps._common import apply_kube_changes, carry_out, plan_or_refuse
from egress_lib.tables import Table
from egress_lib.waiting import poll

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "01-install-controller"
CRD_NAME = "mseingressconfigs.mse.alibabacloud.com"
CONTROLLER_NAMESPACE = "mse-ingress-controller"
CONTROLLER_DEPLOYMENT = "ack-mse-ingress-controller"
DEFAULT_CLASS = "mse"


def addon_versions(session: Session) -> dict[str, Any]:
    """CS DescribeClusterAddonsVersion: add-on name -> {version, next_version, ...}."""
    p = session.params
    body = call(
        "cs",
        "DescribeClusterAddonsVersion",
        session.cs.describe_cluster_addons_version,
        p.cluster_id,
    )
    return dict(body or {})


def installed_version(session: Session) -> str | None:
    """The installed add-on version, or None (an empty ``version`` means not installed)."""
    entry = addon_versions(session).get(session.params.controller.addon_name) or {}
    version = entry.get("version") if isinstance(entry, dict) else None
    return str(version) if version else None


def target_version(session: Session) -> str:
    """``controller.version`` or the latest version the cluster offers (ListAddons)."""
    from alibabacloud_cs20151215 import models as m

    p = session.params
    if p.controller.version:
        return p.controller.version
    body = call(
        "cs",
        "ListAddons",
        session.cs.list_addons,
        m.ListAddonsRequest(cluster_id=p.cluster_id, region_id=p.region_id),
    )
    for addon in getattr(body, "addons", None) or []:
        if addon.name == p.controller.addon_name and addon.version:
            return str(addon.version)
    entry = addon_versions(session).get(p.controller.addon_name) or {}
    latest = (
        (entry.get("next_version") or entry.get("version")) if isinstance(entry, dict) else None
    )
    if latest:
        return str(latest)
    raise PreconditionFailed(
        f"the cluster offers no add-on named {p.controller.addon_name!r}; "
        "set controller.addon_name/controller.version"
    )


# CS GetClusterAddonInstance states (api-cs-2015-12-15-getclusteraddoninstance: active,
# updating, upgrading, deleting); the sandbox also reports "initial" while an install runs
# and "unhealthy" after a failed one. Anything not listed counts as still in flight.
ACTIVE = "active"
DELETING = "deleting"
BROKEN = ("unhealthy", "failed", "fail")


def plan(session: Session) -> Plan:
    """Create the IngressClass first when needed, then install the add-on; or wait for it.

    "Installed" means active: an add-on whose install is still in flight (another run, the
    console) is planned as a wait for it, never as done.
    """
    p = session.params
    version = installed_version(session)
    if version:
        return _plan_installed(session, version)
    changes: list[Change] = []
    warnings: list[str] = []
    existing_class = kube.get(session, "IngressClass", DEFAULT_CLASS)
    if existing_class is None and p.gateway.ingress_class == DEFAULT_CLASS:
        change = kube.plan_object(session, manifests.ingress_class(p))
        changes.append(
            replace(
                change,
                detail="before the add-on: it creates a default internet-facing gateway "
                f"mse-ingress-premium-{p.cluster_id} unless an IngressClass named mse exists",
            )
        )
    elif existing_class is None:
        warnings.append(
            f"gateway.ingress_class is {p.gateway.ingress_class!r}, so no IngressClass 'mse' "
            "exists at install time: the add-on will create the default internet-facing "
            f"gateway mse-ingress-premium-{p.cluster_id}"
        )
    target = target_version(session)
    request = {
        "ClusterId": p.cluster_id,
        "body": [{"name": p.controller.addon_name, "version": target}],
    }
    changes.append(
        Change(
            "create",
            "Addon",
            p.controller.addon_name,
            f"install version {target}",
            body=f"cs:InstallClusterAddons\n{to_yaml(request)}",
            payload=request,
            precondition={"installed": ""},
        )
    )
    changes.append(Change("wait", "Task", "InstallClusterAddons", "task state success"))
    changes += _controller_waits()
    return Plan(STEP, changes, warnings)


def _controller_waits() -> list[Change]:
    return [
        Change("wait", "CustomResourceDefinition", CRD_NAME, "Established"),
        Change("wait", "Deployment", CONTROLLER_DEPLOYMENT, "available"),
    ]


def _plan_installed(session: Session, version: str) -> Plan:
    """The plan for an add-on CS lists: done when active, a wait while in flight."""
    name = session.params.controller.addon_name
    state = addon_state(session)
    if state == DELETING:
        raise PreconditionFailed(
            f"the add-on {name} {version} is being uninstalled (CS state {state})",
            remedy=remedies.addon_deleting(name),
        )
    if state == ACTIVE:
        first = Change("unchanged", "Addon", name, f"installed {version}")
        return Plan(STEP, [first, *_controller_waits()])
    wait = Change(
        "wait",
        "Addon",
        name,
        f"no change; waiting for add-on {name} {version} ({state or 'no state'}) to be active",
    )
    warnings = (
        [f"CS reports the add-on {name} as {state}: apply fails unless it recovers"]
        if state in BROKEN
        else []
    )
    notes = [
        (
            f"no change; waiting for add-on {name} ({state or 'no state'}): an install is in "
            "flight (another run, or the console); apply waits for it as a first run would"
        )
    ]
    return Plan(STEP, [wait, *_controller_waits()], warnings, notes)


_make_plan = plan  # apply's argument is also called "plan"


def install(session: Session, version: str) -> tuple[str, dict[str, str]]:
    """CS InstallClusterAddons; returns the task id."""
    from alibabacloud_cs20151215 import models as m

    p = session.params
    req = m.InstallClusterAddonsRequest(
        body=[m.InstallClusterAddonsRequestBody(name=p.controller.addon_name, version=version)]
    )
    body, request_id = call_with_id(
        "cs", "InstallClusterAddons", session.cs.install_cluster_addons, p.cluster_id, req
    )
    return str(getattr(body, "task_id", "") or ""), request_id


def wait_for_task(session: Session, task_id: str) -> dict[str, Any]:
    """Poll DescribeTaskInfo until success (the CS API has no watch); fail on ``fail``."""
    p = session.params

    def fetch() -> dict[str, Any]:
        body = call("cs", "DescribeTaskInfo", session.cs.describe_task_info, task_id)
        task: dict[str, Any] = body.to_map()
        return task

    task = poll(
        fetch,
        lambda t: t.get("state") in ("success", "fail", "failed"),
        timeout=p.timeouts.controller_seconds,
        what=f"CS task {task_id}",
        reason=f"installing {p.controller.addon_name}",
        describe=lambda t: f"state={t.get('state')} stage={t.get('current_stage')}",
    )
    if task.get("state") != "success":
        err = task.get("error") or {}
        raise StepFailed(
            f"installing {p.controller.addon_name}: CS task {task_id} ended in state "
            f"{task.get('state')}: {err.get('code')}: {err.get('message')}"
        )
    return task


def wait_for_controller(session: Session) -> list[dict[str, Any]]:
    """Watch the CRD until Established and the controller Deployment until available."""
    seconds = session.params.timeouts.controller_seconds
    crd = kube.wait_for(
        session,
        "CustomResourceDefinition",
        CRD_NAME,
        None,
        lambda o: _condition(o, "Established"),
        timeout=seconds,
        reason="the MseIngressConfig CRD to be Established",
    )
    deploy = kube.wait_for(
        session,
        "Deployment",
        CONTROLLER_DEPLOYMENT,
        CONTROLLER_NAMESPACE,
        lambda o: _condition(o, "Available"),
        timeout=seconds,
        reason="the MSE Ingress Controller Deployment to be available",
    )
    return [kube.strip_server_fields(crd), kube.strip_server_fields(deploy)]


def _watched(session: Session) -> list[tuple[str, str, str | None]]:
    klass = session.params.gateway.ingress_class
    return [
        ("Deployment", CONTROLLER_DEPLOYMENT, CONTROLLER_NAMESPACE),
        ("IngressClass", klass, None),
    ]


def as_the_cluster_has_it(session: Session) -> list[dict[str, Any]]:
    """The controller's Deployment and the IngressClass, as read now (first runs and re-runs)."""
    found = [kube.get(session, kind, name, ns) for kind, name, ns in _watched(session)]
    return [kube.strip_server_fields(o) for o in found if o is not None]


def addon_state(session: Session) -> str:
    """The installed add-on's state as CS GetClusterAddonInstance reports it (``active``, ...)."""
    found = addon_instance(session)
    return found[1] if found else ""


def addon_instance(session: Session) -> tuple[str, str] | None:
    """(version, state) of the add-on as CS GetClusterAddonInstance reports it; None: absent."""
    p = session.params
    try:
        body = call(
            "cs",
            "GetClusterAddonInstance",
            session.cs.get_cluster_addon_instance,
            p.cluster_id,
            p.controller.addon_name,
        )
    except CloudApiError as e:
        if inventory.is_not_found(e):
            return None
        raise
    return str(getattr(body, "version", "") or ""), str(getattr(body, "state", "") or "")


def wait_for_addon(session: Session, why: str) -> tuple[str, str]:
    """Poll the add-on (CS has no watch) until active; broken, deleting or gone fail fast.

    For an install this run did not start (no task ID to follow): ``why`` says whose.
    """
    p = session.params
    name = p.controller.addon_name

    def done(found: tuple[str, str] | None) -> bool:
        if found is None:
            raise StepFailed(
                f"the add-on {name} disappeared while waiting for {why}: CS no longer lists it",
                remedy="Re-run 01-install-controller: its plan installs it again.",
            )
        version, state = found
        if state in BROKEN or state == DELETING:
            raise StepFailed(
                f"the add-on {name} {version} is {state} (CS GetClusterAddonInstance) while "
                f"waiting for {why}",
                remedy=remedies.addon_deleting(name)
                if state == DELETING
                else remedies.addon_unhealthy(name, state),
            )
        return state == ACTIVE

    found = poll(
        lambda: addon_instance(session),
        done,
        timeout=p.timeouts.controller_seconds,
        what=f"add-on {name}",
        reason=why,
        describe=lambda f: f"state={f[1]}" if f else "absent",
    )
    assert found is not None
    return found


def addon_table(session: Session) -> Table:
    """The add-on as CS reports it: installed version, state, and the latest version offered."""
    name = session.params.controller.addon_name
    entry = addon_versions(session).get(name) or {}
    entry = entry if isinstance(entry, dict) else {}
    version = str(entry.get("version") or "")
    state = addon_state(session) if version else f"not installed ({STEP} installs it)"
    latest = entry.get("next_version") or ""
    return Table(["Add-on", "Version", "State", "Latest version"], [[name, version, state, latest]])


def cluster_objects(session: Session) -> YamlBlock:
    """:func:`as_the_cluster_has_it` as YAML, saying which of the two does not exist yet."""
    found = as_the_cluster_has_it(session)
    have = {(o.get("kind"), (o.get("metadata") or {}).get("name")) for o in found}
    missing = [
        f"{kind} {f'{ns}/' if ns else ''}{name}"
        for kind, name, ns in _watched(session)
        if (kind, name) not in have
    ]
    note = f"not in the cluster yet: {' and '.join(missing)}" if missing else ""
    return yaml_block(found, note=note)


def _condition(obj: dict[str, Any] | None, kind: str) -> bool:
    if not obj:
        return False
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Carry out exactly ``plan``: IngressClass (if planned), install, wait for the controller.

    An install another run (or the console) started is waited for, never started again: in
    the plan (a wait), and when InstallClusterAddons finds one in flight.
    """
    given = plan is not None
    plan = plan_or_refuse(session, plan, _make_plan)

    def run(planned: Plan) -> StepResult:
        if not planned.has_changes:
            applied = [_converged(session, c) for c in planned.changes if c.kind == "Addon"]
            wait_for_controller(session)
            objects = as_the_cluster_has_it(session)
            return StepResult(STEP, applied, objects, {}, list(planned.warnings))
        applied = apply_kube_changes(session, planned, ("IngressClass",))
        addon = next(c for c in planned.changes if c.kind == "Addon")
        version = str(addon.payload["body"][0]["version"])
        started = _install_or_join(session, version)
        if started is None:
            applied.append(
                replace(
                    addon,
                    action="unchanged",
                    detail=f"version {version}: installed meanwhile by another run, the "
                    "console or an unanswered call of this one (an install was in flight); "
                    "waited for it, started no other",
                    payload=None,
                )
            )
        else:
            task_id, request_id = started
            applied.append(
                replace(
                    addon,
                    detail=f"version {version}, task {task_id}",
                    payload=None,
                    result={"task_id": task_id, "request_ids": [request_id]},
                )
            )
            if task_id:
                wait_for_task(session, task_id)
        wait_for_controller(session)
        objects = as_the_cluster_has_it(session)
        return StepResult(STEP, applied, objects, {}, list(planned.warnings))

    return carry_out(session, plan, _replan_for(plan) if given else None, run)


def _converged(session: Session, change: Change) -> Change:
    if change.action != "wait":
        return change
    version, state = wait_for_addon(session, "the add-on install in flight")
    return replace(change, detail=f"installed {version}: {state} after waiting for its install")


def _install_or_join(session: Session, version: str) -> tuple[str, dict[str, str]] | None:
    """InstallClusterAddons; None when an install of ``version`` was in flight and is now done.

    CS refuses a second install while one runs (the sandbox answers AddonStateConflict, a code
    [UNCONFIRMED] for the real CS), so whatever the code, a refusal is followed by a read: an
    add-on of the wanted version installing or active is the same outcome as our own install.
    """
    try:
        return install(session, version)
    except CloudApiError:
        if not _joinable(addon_instance(session), version):
            raise
    wait_for_addon(session, "the add-on install another run started")
    return None


def _replan_for(planned: Plan) -> Callable[[Session], Plan]:
    """A fresh plan in which what ``planned`` installs or waits for counts as planned.

    Between plan and apply another run (or the console) may start or finish the very install
    the plan shows, or the install the plan waits for may finish: that is convergence, not a
    changed world, so apply joins it instead of calling the plan stale. Anything else that
    changed (the IngressClass made meanwhile) still makes the plan stale.
    """
    addon = next((c for c in planned.changes if c.kind == "Addon" and c.action == "create"), None)
    waited = any(c.kind == "Addon" and c.action == "wait" for c in planned.changes)
    with_class = any(c.kind == "IngressClass" for c in planned.changes)

    def replan(session: Session) -> Plan:
        fresh = plan(session)
        if waited:  # the install the plan waits for finished meanwhile: what it waited for
            settled = [
                replace(c, action="wait") if c.kind == "Addon" and c.action == "unchanged" else c
                for c in fresh.changes
            ]
            return replace(fresh, changes=settled)
        if addon is None or any(c.kind == "Addon" and c.action == "create" for c in fresh.changes):
            return fresh
        found = addon_instance(session)
        if not _joinable(found, str(addon.payload["body"][0]["version"])):
            return fresh
        changes = [addon if c.kind == "Addon" else c for c in fresh.changes]
        if with_class:
            changes.insert(0, kube.plan_object(session, manifests.ingress_class(session.params)))
        return replace(fresh, changes=changes)

    return replan


def _joinable(found: tuple[str, str] | None, version: str) -> bool:
    """True for the add-on at ``version``, installing or installed: our install's outcome."""
    return found is not None and found[0] == version and found[1] not in (*BROKEN, DELETING)
