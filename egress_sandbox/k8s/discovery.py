"""Discovery documents: /version, /api, /apis, and per group-version resource lists.

Aggregated discovery (apidiscovery.k8s.io/v2) is not implemented; clients that ask for it
accept the plain documents when the Content-Type says ``application/json``, as kubectl does.
"""

from __future__ import annotations

from typing import Any

from egress_sandbox.k8s.types import ResourceType, TypeRegistry

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.1-aliyun.1",
    "gitCommit": "3d8e1e3c0c6b9f8b1a8d4b0a1b6f6b0a9c8d7e6f",
    "gitTreeState": "clean",
    "buildDate": "2025-01-20T08:00:00Z",
    "goVersion": "go1.23.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _sub_verbs(sub: str) -> list[str]:
    return ["get"] if sub == "log" else ["get", "patch", "update"]


def resource_list(gv: str, types: list[ResourceType]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for t in sorted(types, key=lambda t: t.plural):
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular or t.kind.lower(),
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": sorted(t.verbs),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        resources.append(entry)
        for sub in t.subresources:
            resources.append(
                {
                    "name": f"{t.plural}/{sub}",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": "Pod" if sub == "log" else t.kind,
                    "verbs": _sub_verbs(sub),
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def group_list(registry: TypeRegistry) -> dict[str, Any]:
    groups = [
        _group(g, sorted(vs, reverse=True))
        for g, vs in sorted(registry.group_versions().items())
        if g
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: TypeRegistry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not versions or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, sorted(versions, reverse=True))}


def types_in(registry: TypeRegistry, group_name: str, version: str) -> list[ResourceType]:
    return [t for t in registry.all() if t.group == group_name and t.version == version]
