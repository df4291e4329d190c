"""A Service's ready endpoints, as the EndpointSlice controller would list them.

The sandbox has no EndpointSlice objects; in-process users (the gateway's mirroring) ask here
instead, at the moment they need an address, so a pod that just became ready or went away is
seen at once.
"""

from __future__ import annotations

from typing import Any

from egress_sandbox.k8s.store import Store

Obj = dict[str, Any]


def _ready(pod: Obj) -> bool:
    """Running, condition Ready True, an address, and not terminating (as EndpointSlice's
    ``ready``: a terminating pod is never ready)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _target_port(pod: Obj, target: int | str) -> int | None:
    """A numeric targetPort as is; a named one resolved per pod from its containerPorts."""
    if isinstance(target, int):
        return target
    if target.isdigit():
        return int(target)  # a quoted number in a hand-written manifest
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == "TCP":
                return int(port["containerPort"])
    return None  # this pod has no port of that name: not an endpoint (as in Kubernetes)


def ready_endpoints(store: Store, namespace: str, service: str, port: int) -> list[tuple[str, int]]:
    """``(podIP, targetPort)`` of every ready pod behind ``namespace/service``'s ``port``.

    ``port`` is the Service's port (``spec.ports[].port``), not the target port. Empty when the
    Service does not exist, has no selector (ExternalName, or endpoints managed by hand), has
    no such TCP port, or no selected pod is ready. Sorted by pod name, so callers that pick
    one by seeded randomness stay reproducible.
    """
    svc_rt = store.types.get("", "v1", "services")
    pods_rt = store.types.get("", "v1", "pods")
    assert svc_rt is not None and pods_rt is not None
    svc = store.try_get(svc_rt, namespace, service)
    if svc is None:
        return []
    spec = svc.get("spec") or {}
    selector: dict[str, str] = spec.get("selector") or {}
    if spec.get("type") == "ExternalName" or not selector:
        return []
    entry = next(
        (
            p
            for p in spec.get("ports") or []
            if int(p.get("port", 0)) == port and (p.get("protocol") or "TCP") == "TCP"
        ),
        None,
    )
    if entry is None:
        return []
    target: int | str = entry.get("targetPort", port)

    def selected(pod: Obj) -> bool:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in selector.items())

    pods, _ = store.list(pods_rt, namespace, selected)
    out: list[tuple[str, int]] = []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        if not _ready(pod):
            continue
        number = _target_port(pod, target)
        if number is not None:
            out.append((str(pod["status"]["podIP"]), number))
    return out
