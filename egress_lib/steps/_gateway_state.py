"""The MseIngressConfig a step depends on: which one, its phase, and failing fast when Failed.

A Failed MseIngressConfig stays Failed (the controller does not retry it), so a wait for
anything its gateway provides (an Ingress address, a request through it) can only time out.
Steps 05 and 06 read the gateway that the IngressClass ``gateway.ingress_class`` names and
stop at once, naming it, its message and Events, and how to recover.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from egress_lib import kube, ownership, remedies
from egress_lib.errors import EgressError, KubeEvent, StepFailed
from egress_lib.kube_events import events_for
from egress_lib.manifests import MSE_GROUP

if TYPE_CHECKING:
    from egress_lib.clients import Session

KIND = "MseIngressConfig"
FAILED = "Failed"
LISTENING = "Listening"
# A controller may set the phase a moment before it records the Warning that says why.
EVENT_GRACE_SECONDS = 2.0


def phase(obj: dict[str, Any] | None) -> str:
    """``status.phase`` of a MseIngressConfig ("" when it has none yet)."""
    return str(((obj or {}).get("status") or {}).get("phase") or "")


def message(obj: dict[str, Any] | None) -> str:
    """The Failed config's reason; the key's spelling is [UNCONFIRMED] (reference 1.4)."""
    status = (obj or {}).get("status") or {}
    return str(status.get("message") or status.get("Message") or "no message")


def uid(obj: dict[str, Any] | None) -> str | None:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "") or None


def events(session: Session, name: str, obj_uid: str | None) -> list[KubeEvent]:
    """The config's Events; best effort: no right to list Events must not hide a failure."""
    try:
        return events_for(session, KIND, name, uid=obj_uid)
    except EgressError:
        return []


def failure_events(session: Session, name: str, obj_uid: str | None) -> list[KubeEvent]:
    """The config's Events, waiting up to EVENT_GRACE_SECONDS for a Warning among them."""
    deadline = time.monotonic() + EVENT_GRACE_SECONDS
    while True:
        found = events(session, name, obj_uid)
        if any(e.type == "Warning" for e in found) or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def bound_config_name(session: Session) -> str | None:
    """The MseIngressConfig that IngressClass ``gateway.ingress_class`` names, or None.

    None when the class does not exist yet or does not point at a MseIngressConfig: then
    nothing is known to be Failed, and the waits go on as before.
    """
    try:
        klass = kube.get(session, "IngressClass", session.params.gateway.ingress_class)
    except EgressError:
        return None  # e.g. no right to read IngressClasses: the check is best effort
    target = ((klass or {}).get("spec") or {}).get("parameters") or {}
    if target.get("kind") != KIND or target.get("apiGroup") not in (None, MSE_GROUP):
        return None
    name = target.get("name")
    return str(name) if name else None


class GatewayWatch:
    """Reads the bound gateway for a wait's predicate and raises once it is Failed.

    The IngressClass is read once per wait; the config on every check, since its phase is
    what may change while the wait goes on.
    """

    def __init__(self, session: Session, step: str, waiting_for: str) -> None:
        self.session = session
        self.step = step
        self.waiting_for = waiting_for
        self.name = bound_config_name(session)

    def current(self) -> dict[str, Any] | None:
        if self.name is None:
            return None
        try:
            return kube.get(self.session, KIND, self.name)
        except EgressError:
            return None  # the CRD is not installed (yet): nothing can be Failed

    def check(self) -> dict[str, Any] | None:
        """The bound config as read now; raises :class:`StepFailed` when it is Failed."""
        obj = self.current()
        if obj is not None and phase(obj) == FAILED:
            raise self.failed(obj)
        return obj

    def failed(self, obj: dict[str, Any]) -> StepFailed:
        p = self.session.params
        assert self.name is not None
        ours = ownership.owner(obj, p) == "ours"
        return StepFailed(
            f"{self.waiting_for}: MseIngressConfig {self.name}, the gateway of IngressClass "
            f"{p.gateway.ingress_class}, is Failed: {message(obj)}",
            remedy=remedies.gateway_failed_for(self.name, p.gateway.ingress_class, self.step, ours),
            events=failure_events(self.session, self.name, uid(obj)),
        )

    def wait_listening(self, timeout: float) -> None:
        """Watch the bound config until Listening (at once if it is); Failed raises at once."""
        obj = self.check()
        if obj is None or phase(obj) == LISTENING or self.name is None:
            return

        def listening(o: dict[str, Any] | None) -> bool:
            if o is not None and phase(o) == FAILED:
                raise self.failed(o)
            return o is not None and phase(o) == LISTENING

        kube.wait_for(
            self.session,
            KIND,
            self.name,
            None,
            listening,
            timeout=timeout,
            reason=f"the MSE gateway {self.name} to be Listening, before {self.waiting_for}",
        )
