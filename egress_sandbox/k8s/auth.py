"""Bearer-token authentication and the sandbox's two-role authorization (admin, read-only)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from egress_sandbox.k8s.errors import Forbidden, Unauthorized

# The verbs a read-only user may not perform.
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = field(default=("system:authenticated",))
    read_only: bool = False


def authenticate(header: str | None, users: dict[str, User]) -> User:
    """The user a ``Bearer`` token belongs to; anything else is 401 as kube-apiserver says it."""
    if header and header.startswith("Bearer "):
        token = header[len("Bearer ") :].strip()
        for known, user in users.items():
            # Constant-time compare: tokens are secrets even in a sandbox.
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
    raise Unauthorized("Unauthorized")


def allowed(user: User, verb: str) -> bool:
    return not (user.read_only and verb in WRITE_VERBS)


def forbidden_message(
    user: User,
    verb: str,
    resource: str,
    group: str,
    namespace: str | None,
    name: str | None,
    subresource: str | None = None,
) -> str:
    """The RBAC denial sentence, word for word as kube-apiserver builds it."""
    res = f"{resource}/{subresource}" if subresource else resource
    subject = f'{resource}.{group} "{name or ""}"' if group else f'{resource} "{name or ""}"'
    if not name:
        subject = f"{resource}.{group}" if group else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user.name}" cannot {verb} resource "{res}" '
        f'in API group "{group}"{where}'
    )


def authorize(
    user: User,
    verb: str,
    resource: str,
    group: str,
    namespace: str | None,
    name: str | None,
    subresource: str | None = None,
) -> None:
    if allowed(user, verb):
        return
    details: dict[str, str] = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    raise Forbidden(
        forbidden_message(user, verb, resource, group, namespace, name, subresource),
        details=details,
    )
