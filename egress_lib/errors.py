"""The exceptions egress_lib raises; every one derives from :class:`EgressError`.

SDK and Kubernetes client exceptions are converted at the call site (``raise ... from e``)
so callers handle one tree and messages never carry request headers or credentials::

    EgressError
    ├── ParameterError        bad parameters (also a ValueError); nothing was changed
    ├── CloudApiError         an Alibaba Cloud call failed: code, HTTP status, RequestId
    │   └── CloudConnectionError   the endpoint gave no usable answer
    ├── KubernetesApiError    a Kubernetes call failed: HTTP status and reason
    ├── WaitTimeout           a wait reached its deadline (also a TimeoutError)
    ├── PreconditionFailed    a fact about the cluster or cloud makes the step unsafe
    ├── NotApproved           the plan has changes and approve is false
    ├── PlanStale             the world changed since the plan; nothing was written
    ├── PlanConflict          the plan would take over objects the runbook does not own
    ├── LockHeld              another run holds the cluster's lock
    ├── StepFailed            a step ran but its outcome is wrong (verify failed, ...)
    └── TargetUnavailable     the sandbox is not running, or the kubeconfig cannot be loaded

Every error carries a ``remedy``: what the operator should do next. Each class has a default;
an instance may say more (``remedy=`` keyword). Errors about a Kubernetes object may carry its
``events`` (``kubectl describe``'s Events). :mod:`egress_lib.error_display` shows both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from egress_lib import remedies
from egress_lib.remedies import SAFE_TO_RERUN


@dataclass(frozen=True)
class KubeEvent:
    """One core/v1 Event about an object, as ``kubectl describe`` lists it."""

    type: str
    reason: str
    message: str
    source: str
    count: int = 1
    last_seen: str = ""


class EgressError(Exception):
    """Base class of every error egress_lib raises."""

    remedy: str = (
        "Fix what the message names, then re-run the notebook from the top. " + SAFE_TO_RERUN
    )
    events: tuple[KubeEvent, ...] = ()

    def __init__(
        self, *args: object, remedy: str | None = None, events: Sequence[KubeEvent] = ()
    ) -> None:
        super().__init__(*args)
        if remedy is not None:
            self.remedy = remedy
        if events:
            self.events = tuple(events)

    @property
    def summary(self) -> str:
        """What failed, in one line (the message's first line)."""
        lines = str(self).strip().splitlines()
        return lines[0] if lines else type(self).__name__


@dataclass(frozen=True)
class Problem:
    """One invalid parameter: where it is, what was given, what is expected."""

    path: str
    value: object
    expected: str
    # What is wrong, e.g. "'vsw_1' is not a vSwitch ID"; empty = "<value> is not valid".
    problem: str = ""

    def __str__(self) -> str:
        what = self.problem or f"{self.value!r} is not valid"
        return f"{self.path}: {shorten(what)}; expected {shorten(self.expected)}"


MAX_MESSAGE = 300


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text``, or its start and end around "…(N characters)…" when longer than ``limit``.

    A value of megabytes in a parameters file must not come back in full in the error.
    """
    if len(text) <= limit:
        return text
    keep = (limit - 40) // 2
    return f"{text[:keep]}…({len(text) - 2 * keep} characters)…{text[-keep:]}"


class ParameterError(EgressError, ValueError):
    """The parameters are invalid. ``problems`` lists every problem found."""

    remedy = (
        "Fix the parameters named above (the parameters cell, or the parameters file), then "
        "run again. Nothing was changed."
    )

    def __init__(
        self,
        problems: Sequence[Problem] | Problem,
        *,
        source: str | None = None,
        remedy: str | None = None,
    ):
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        if not self.problems:
            raise ValueError("ParameterError needs at least one problem")
        first = self.problems[0]
        self.path = first.path
        self.value = first.value
        self.expected = first.expected
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            text = f"invalid parameter{where}: {first}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{len(self.problems)} invalid parameters{where}:\n{lines}"
        super().__init__(text, remedy=remedy)


class CloudApiError(EgressError):
    """An Alibaba Cloud OpenAPI call failed (the service answered with an error).

    ``recommend`` is the troubleshooting link the API returned (``Recommend``);
    ``auth_action`` the RAM action a permission error names (``AccessDeniedDetail``).
    """

    remedy = (
        "Look the code up with the Recommend link (Alibaba Cloud's troubleshooting page for "
        "this RequestId), fix the cause, then re-run the step. " + SAFE_TO_RERUN
    )

    def __init__(
        self,
        *,
        product: str,
        action: str,
        code: str | None,
        status_code: int | None,
        request_id: str | None,
        message: str,
        recommend: str | None = None,
        auth_action: str | None = None,
        principal: str | None = None,
        credential_source: str | None = None,
        remedy: str | None = None,
    ):
        self.product = product
        self.action = action
        self.code = code
        self.status_code = status_code
        self.request_id = request_id
        self.message = message
        self.recommend = recommend
        self.auth_action = auth_action
        self.principal = principal
        self.credential_source = credential_source
        parts = [f"{product}:{action} failed"]
        if status_code is not None:
            parts.append(f"HTTP {status_code}")
        if code:
            parts.append(code)
        text = ", ".join(parts) + f": {message}"
        ids = [f"RequestId {request_id}"] if request_id else []
        ids += [f"Recommend {recommend}"] if recommend else []
        if ids:
            text += f" ({'; '.join(ids)})"
        if remedy is None:
            remedy = remedies.for_cloud_error(
                product,
                action,
                code,
                status_code,
                auth_action=auth_action,
                principal=principal,
                credential_source=credential_source,
                connection=isinstance(self, CloudConnectionError),
                message=message,
                recommend=recommend,
            )
        super().__init__(text, remedy=remedy)

    @property
    def summary(self) -> str:
        return f"{self.product}:{self.action} failed: {self.message}"

    @classmethod
    def from_sdk(
        cls,
        product: str,
        action: str,
        exc: BaseException,
        *,
        credential_source: str | None = None,
    ) -> CloudApiError:
        """Build from a TeaException/ClientException/ServerException/UnretryableException."""
        # UnretryableException means no usable answer (connection refused, timeout,
        # TLS, non-JSON body): keep it apart so callers can tell "down" from "denied".
        if type(exc).__name__ == "UnretryableException" or not hasattr(exc, "code"):
            inner = getattr(exc, "inner_exception", None) or exc
            return CloudConnectionError(
                product=product,
                action=action,
                code=None,
                status_code=None,
                request_id=None,
                message=_short(str(inner)),
                credential_source=credential_source,
            )
        data = getattr(exc, "data", None)
        status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
        request_id = getattr(exc, "request_id", None)
        if request_id == "None":  # the SDK formats a missing RequestId as the string "None"
            request_id = None
        recommend = None
        if isinstance(data, dict):
            status = status or data.get("statusCode")
            request_id = request_id or data.get("RequestId") or data.get("requestId")
            recommend = data.get("Recommend") or data.get("recommend")
        raw = data.get("Message") or data.get("message") if isinstance(data, dict) else None
        message = str(raw or getattr(exc, "message", None) or type(exc).__name__)
        denied = getattr(exc, "access_denied_detail", None) or (
            (data.get("AccessDeniedDetail") or data.get("accessDeniedDetail"))
            if isinstance(data, dict)
            else None
        )
        denied = denied if isinstance(denied, dict) else {}
        who = denied.get("AuthPrincipalDisplayName")
        return cls(
            product=product,
            action=action,
            code=getattr(exc, "code", None),
            status_code=int(status) if status is not None else None,
            request_id=str(request_id) if request_id else None,
            message=_short(message),
            recommend=_short(str(recommend)) if recommend else None,
            auth_action=str(denied["AuthAction"]) if denied.get("AuthAction") else None,
            principal=str(who) if who else None,
            credential_source=credential_source,
        )


class CloudConnectionError(CloudApiError):
    """The OpenAPI endpoint could not be reached or gave no usable answer."""


class KubernetesApiError(EgressError):
    """A Kubernetes API call failed; ``reason``/``status`` come from the Status body."""

    remedy = (
        "Check that the API server answers and that your kubeconfig user may do this "
        "(`kubectl auth can-i VERB RESOURCE`; 00-preflight checks every permission the runbook "
        "needs), then re-run the step. " + SAFE_TO_RERUN
    )

    def __init__(
        self,
        *,
        status: int | None,
        reason: str,
        message: str,
        kind: str | None = None,
        name: str | None = None,
        operation: str | None = None,
        remedy: str | None = None,
    ):
        self.status = status
        self.reason = reason
        self.message = message
        self.kind = kind
        self.name = name
        self.operation = operation
        target = f"{kind}/{name}" if kind and name else (kind or name or "")
        head = " ".join(x for x in (operation, target) if x) or "Kubernetes API call"
        super().__init__(f"{head} failed: HTTP {status} {reason}: {message}", remedy=remedy)

    @classmethod
    def from_api_exception(
        cls,
        exc: BaseException,
        *,
        kind: str | None = None,
        name: str | None = None,
        operation: str | None = None,
    ) -> KubernetesApiError:
        status = getattr(exc, "status", None)
        reason = str(getattr(exc, "reason", "") or "")
        message = reason or str(exc)
        body = getattr(exc, "body", None)
        if body:
            try:
                parsed: Any = json.loads(body)
            except (TypeError, ValueError):
                parsed = None
            if isinstance(parsed, dict):
                reason = str(parsed.get("reason") or reason)
                message = str(parsed.get("message") or message)
                details = parsed.get("details")
                if isinstance(details, dict):
                    kind = kind or details.get("kind")
                    name = name or details.get("name")
        return cls(
            status=int(status) if status is not None else None,
            reason=reason or "Unknown",
            message=_short(message),
            kind=kind,
            name=name,
            operation=operation,
        )


class WaitTimeout(EgressError, TimeoutError):
    """A wait reached its deadline; ``last_state`` is what was seen last."""

    remedy = (
        "Nothing failed yet: the object may still get there. Look at its status and Events "
        "(`kubectl describe`), then re-run the step: it changes nothing that is done and waits "
        "again. If it is only slow, raise the matching timeouts.* parameter."
    )

    def __init__(
        self,
        what: str,
        seconds: float,
        last_state: object,
        reason: str = "",
        *,
        remedy: str | None = None,
        events: Sequence[KubeEvent] = (),
    ):
        self.what = what
        self.seconds = seconds
        self.last_state = last_state
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"gave up waiting for {what}{why} after {seconds:g}s; last seen: {last_state}",
            remedy=remedy,
            events=events,
        )


class PreconditionFailed(EgressError):
    """A fact about the cluster or cloud makes the step unsafe to run."""

    remedy = (
        "Fix the fact the message names (00-preflight shows them all), or the parameter that "
        "points at it, then re-run the step."
    )


class NotApproved(EgressError):
    """The step would change something but ``approve`` is false."""

    # The same sentence require_approval() puts in its message.
    remedy = (
        "Review the plan, then set approve = True (or run `egress-runbook run PARAMS --approve`)."
    )


class PlanStale(EgressError):
    """The world changed between the plan and apply; ``changes`` says what. Nothing written."""

    remedy = "Plan again, review the new plan, then apply it."

    def __init__(self, step: str, changes: Sequence[str], *, written: Sequence[str] = ()):
        self.step = step
        self.changes = list(changes)
        self.written = list(written)
        lines = "\n".join(f"  - {c}" for c in self.changes)
        done = (
            "nothing was written"
            if not self.written
            else "already applied before this was seen: " + ", ".join(self.written)
        )
        super().__init__(
            f"the plan for {step} is stale; {done}. What changed since the plan:\n{lines}\n"
            + self.remedy
        )


class PlanConflict(EgressError):
    """The plan would take over objects the runbook did not create; ``conflicts`` names them."""

    remedy = (
        "Rename ours in the parameters, remove theirs, or list them under adopt: "
        "(e.g. adopt: [Ingress/mse-ingress]) to take them over."
    )

    def __init__(self, step: str, conflicts: Sequence[str]):
        self.step = step
        self.conflicts = list(conflicts)
        lines = "\n".join(f"  - {c}" for c in self.conflicts)
        super().__init__(
            f"{step} cannot be applied: {len(self.conflicts)} object(s) exist that egress-runbook "
            f"did not create:\n{lines}\n" + self.remedy
        )


class LockHeld(EgressError):
    """Another run holds the cluster's lock (a coordination.k8s.io Lease)."""

    remedy = (
        "Wait for it to finish (egress-runbook run --wait-lock SECONDS), or, if that run is "
        "dead, let the lease expire."
    )

    def __init__(self, lease: str, namespace: str, holder: str, detail: str = ""):
        self.lease = lease
        self.namespace = namespace
        self.holder = holder
        extra = f"; {detail}" if detail else ""
        super().__init__(
            f"another run holds the lock on this cluster: Lease {namespace}/{lease} is held by "
            f"{holder}{extra}. " + self.remedy
        )


class TargetUnavailable(EgressError):
    """The target cannot be reached or configured: no sandbox running, a bad kubeconfig."""

    remedy = (
        "For the sandbox: start it with `egress-sandbox up` (or `make demo`). For a cluster: "
        "check the parameters kubeconfig and kube_context (`kubectl config get-contexts`). "
        "Then re-run the connect cell. Nothing was changed."
    )


class StepFailed(EgressError):
    """A step ran to the end but its outcome is wrong (e.g. a destination is unreachable)."""

    remedy = "Fix what the message names, then re-run the step. " + SAFE_TO_RERUN


# Signed RPC-style requests carry these in the query string, and transport errors quote the
# URL ("Max retries exceeded with url: /?AccessKeyId=...&SecurityToken=..."): mask them.
_SECRET_PARAMS = re.compile(
    r"\b(AccessKeyId|AccessKeySecret|SecurityToken|Signature|BearerToken)=[^&\s'\")]*",
    re.IGNORECASE,
)


# Headers a traceback may quote (a request's repr, a debug log line).
_SECRET_HEADERS = re.compile(
    r"(\b(?:authorization|x-acs-security-token|x-acs-bearer-token)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(bearer|acs3-hmac-sha256)\s+)?[^\s'\",}]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with the values of credential query parameters and headers replaced by ``***``."""
    text = _SECRET_PARAMS.sub(r"\1=***", text)
    return _SECRET_HEADERS.sub(_mask_header, text)


def _mask_header(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}***"


def _short(text: str, limit: int = 500) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
