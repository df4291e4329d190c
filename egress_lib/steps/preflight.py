"""Step 00: read the cluster, network and permissions; change nothing.

``facts`` gathers what the later steps depend on; ``checks`` turns the facts into
pass/fail findings so an unsafe setup stops before step 01.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from egress_lib import inventory
from egress_lib.errors import PreconditionFailed
from egress_lib.kinds import REQUEST_TIMEOUT
from egress_lib.kube import k8s_errors
from egress_lib.plan import Change, Plan, StepResult
from egress_lib.steps import checks_network
from egress_lib.steps.controller import CONTROLLER_NAMESPACE
from egress_lib.tables import Table, mark

if TYPE_CHECKING:
    from egress_lib.clients import Session

STEP = "00-preflight"
# How a fix that needs no notebook ends: preflight sees the change when it runs again.
AGAIN = f"run {STEP} again"
ALL_VERBS = ("create", "get", "patch", "update", "list", "watch", "delete")

# (group, resource, subresource, verbs, scope) the runbook uses; scope "ns" = params.namespace.
PERMISSIONS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    ("mse.alibabacloud.com", "mseingressconfigs", "", ALL_VERBS, "cluster"),
    ("networking.k8s.io", "ingressclasses", "", ALL_VERBS, "cluster"),
    ("", "services", "", ALL_VERBS, "ns"),
    ("networking.k8s.io", "ingresses", "", ALL_VERBS, "ns"),
    ("", "pods", "", ("create", "get", "list", "watch", "delete"), "ns"),
    ("", "pods", "log", ("get",), "ns"),
    ("", "configmaps", "", ("create", "get", "list", "update", "delete"), "ns"),
    (
        "coordination.k8s.io",
        "leases",
        "",
        ("create", "get", "list", "watch", "update", "delete"),
        "ns",
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions", "", ("get", "list", "watch"), "cluster"),
    ("apps", "deployments", "", ("get", "list", "watch"), CONTROLLER_NAMESPACE),
)


@dataclass(frozen=True)
class Check:
    """One finding; ``level`` warning = worth reading but not blocking; ``fix`` if it fails."""

    name: str
    ok: bool
    detail: str
    level: Literal["error", "warning"] = "error"
    # What to do when it fails: the notebook that fixes it, or the change to make.
    fix: str = ""

    @property
    def mark(self) -> str:
        """``✓``, ``⚠ warning`` or ``✗ error``."""
        return mark(self.ok, self.level)

    @property
    def blocking(self) -> bool:
        """True for a failed error-level check: the runbook stops before step 01."""
        return not self.ok and self.level == "error"


@dataclass
class Facts:
    """What the cloud and the cluster look like (read-only)."""

    cluster: dict[str, Any]
    kubernetes_version: str
    vpc: dict[str, Any] | None
    vswitches: list[dict[str, Any]]
    nat_gateways: list[dict[str, Any]]
    eips: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    snat_entries: list[dict[str, Any]] = field(default_factory=list)
    gateway_vswitches: tuple[str, ...] = ()
    node_pools: list[dict[str, Any]] = field(default_factory=list)
    route_tables: list[dict[str, Any]] = field(default_factory=list)
    route_entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def node_vswitches(self) -> list[str]:
        """The node pools' vSwitches (DescribeClusterDetail.vswitch_ids are the control plane's)."""
        return inventory.node_vswitch_ids(self.node_pools)

    @property
    def internet_nat_gateways(self) -> list[dict[str, Any]]:
        return [n for n in self.nat_gateways if (n.get("NetworkType") or "internet") == "internet"]

    def to_tables(self) -> dict[str, Table]:
        """One table per fact: cluster, vpc, vswitches, nat_gateways, eips, snat_entries."""
        c = self.cluster
        vpc_id = c.get("vpc_id")
        cluster = Table(
            ["ClusterId", "Name", "State", "Version", "Kubernetes", "VpcId", "VSwitchIds"],
            [
                [
                    c.get("cluster_id"),
                    c.get("name"),
                    c.get("state"),
                    c.get("current_version"),
                    self.kubernetes_version,
                    vpc_id,
                    ", ".join(c.get("vswitch_ids") or []),
                ]
            ],
        )
        vpc = Table(
            ["VpcId", "VpcName", "CidrBlock", "Status"],
            [[(self.vpc or {}).get(k) for k in ("VpcId", "VpcName", "CidrBlock", "Status")]],
        )
        vsw = Table(
            ["VSwitchId", "Name", "Zone", "CidrBlock", "Gateway", "Nodes"],
            [
                [
                    v.get("VSwitchId"),
                    v.get("VSwitchName"),
                    v.get("ZoneId"),
                    v.get("CidrBlock"),
                    v.get("VSwitchId") in self.gateway_vswitches,
                    v.get("VSwitchId") in self.node_vswitches,
                ]
                for v in self.vswitches
            ],
            empty=f"no vSwitches in {vpc_id}",
        )
        nat = Table(
            ["NatGatewayId", "Name", "NetworkType", "Status", "SnatTableIds"],
            [
                [
                    n.get("NatGatewayId"),
                    n.get("Name"),
                    n.get("NetworkType"),
                    n.get("Status"),
                    ", ".join(_snat_tables(n)),
                ]
                for n in self.nat_gateways
            ],
            empty=f"no NAT gateway in {vpc_id}",
        )
        eip = Table(
            ["NatGatewayId", "AllocationId", "IpAddress", "Status"],
            [
                [nat_id, e.get("AllocationId"), e.get("IpAddress"), e.get("Status")]
                for nat_id, rows in self.eips.items()
                for e in rows
            ],
            empty="no EIP bound to an Internet NAT gateway",
        )
        snat = Table(
            ["SnatEntryId", "Name", "Source", "SnatIp", "Status"],
            [
                [
                    s.get("SnatEntryId"),
                    s.get("SnatEntryName"),
                    s.get("SourceVSwitchId") or s.get("SourceCIDR"),
                    s.get("SnatIp"),
                    s.get("Status"),
                ]
                for s in self.snat_entries
            ],
            empty="no SNAT entries yet: 03-configure-snat adds the gateway's",
        )
        return {
            "cluster": cluster,
            "vpc": vpc,
            "vswitches": vsw,
            "nat_gateways": nat,
            "eips": eip,
            "snat_entries": snat,
        }

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """One DataFrame per fact table (:meth:`to_tables` for code)."""
        return {name: t.to_frame() for name, t in self.to_tables().items()}


def _snat_tables(nat: dict[str, Any]) -> list[str]:
    return list((nat.get("SnatTableIds") or {}).get("SnatTableId") or [])


def kubernetes_version(session: Session) -> str:
    """``gitVersion`` from the API server's /version."""
    from kubernetes import client as k8s

    api: Any = k8s.VersionApi(session.api_client)
    with k8s_errors("get", "version", "/version"):
        resp = api.get_code(_preload_content=False, _request_timeout=REQUEST_TIMEOUT)
    data: dict[str, Any] = json.loads(resp.data)
    return str(data.get("gitVersion") or "")


def facts(session: Session) -> Facts:
    """Read the cluster, its VPC, vSwitches, NAT gateways, their EIPs and SNAT entries."""
    p = session.params
    cluster = inventory.cluster_detail(session)
    vpc_id = str(cluster.get("vpc_id") or "")
    vpc_rows = inventory.vpcs(session, vpc_id) if vpc_id else []
    nats = inventory.nat_gateways(session, vpc_id) if vpc_id else []
    eips: dict[str, list[dict[str, Any]]] = {}
    snat: list[dict[str, Any]] = []
    for nat in nats:
        if (nat.get("NetworkType") or "internet") != "internet":
            continue
        eips[nat["NatGatewayId"]] = inventory.eips_of(session, nat["NatGatewayId"])
        for table in _snat_tables(nat):
            snat.extend(inventory.snat_entries(session, table))
    return Facts(
        cluster=cluster,
        kubernetes_version=kubernetes_version(session),
        vpc=vpc_rows[0] if vpc_rows else None,
        vswitches=inventory.vswitches(session, vpc_id) if vpc_id else [],
        nat_gateways=nats,
        eips=eips,
        snat_entries=snat,
        gateway_vswitches=tuple(p.gateway.vswitches),
        **checks_network.gather(session, vpc_id, list(p.gateway.vswitches)),
    )


def _version_tuple(text: str) -> tuple[int, int]:
    digits = text.lstrip("v").split(".")
    try:
        return int(digits[0]), int("".join(ch for ch in digits[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def cloud_checks(session: Session, f: Facts) -> list[Check]:
    """Findings about the cluster, vSwitches and NAT gateway."""
    p = session.params
    out: list[Check] = []
    state = f.cluster.get("state")
    out.append(
        Check(
            "cluster running",
            state == "running",
            f"{p.cluster_id} state is {state}",
            fix=f"wait until the cluster is running (ACK console), then {AGAIN}",
        )
    )
    major_minor = _version_tuple(f.kubernetes_version)
    out.append(
        Check(
            "kubernetes >= 1.18",
            major_minor >= (1, 18),
            f"API server reports {f.kubernetes_version or 'no version'}",
            fix=f"upgrade the cluster to Kubernetes 1.18 or later (ACK console), then {AGAIN}",
        )
    )
    in_vpc = {v.get("VSwitchId") for v in f.vswitches}
    vpc_id = f.cluster.get("vpc_id")
    for vsw in p.gateway.vswitches:
        ok = vsw in in_vpc
        out.append(
            Check(
                f"vSwitch {vsw} in the cluster's VPC",
                ok,
                f"found in {vpc_id}" if ok else f"{vsw} is not a vSwitch of {vpc_id}",
                fix=f"set gateway.vswitches to vSwitches of {vpc_id} (the vSwitches table above)",
            )
        )
    shared = sorted(set(p.gateway.vswitches) & set(f.node_vswitches))
    out.append(
        Check(
            "gateway vSwitches are not the nodes' vSwitches",
            not shared,
            "dedicated"
            if not shared
            else f"{', '.join(shared)} also hosts nodes: its SNAT entry gives every pod there "
            "direct internet access, bypassing the egress gateway",
            level="warning",
            fix=f"create a vSwitch for the gateway alone in {vpc_id}; set gateway.vswitches to it",
        )
    )
    internet = f.internet_nat_gateways
    if p.snat.nat_gateway_id:
        internet = [n for n in internet if n.get("NatGatewayId") == p.snat.nat_gateway_id]
    ids = [n.get("NatGatewayId") for n in internet]
    wanted = p.snat.nat_gateway_id or "an Internet NAT gateway"
    if len(internet) == 1:
        nat_id = str(ids[0])
        ips = [str(e.get("IpAddress")) for e in f.eips.get(nat_id, [])]
        out.append(Check("Internet NAT gateway", True, f"{nat_id} in {vpc_id}"))
        out.append(
            Check(
                "EIP bound to the NAT gateway",
                bool(ips),
                ", ".join(ips) or f"{nat_id} has no EIP",
                fix=f"bind an EIP to {nat_id} (VPC console), then {AGAIN}",
            )
        )
        if p.snat.snat_ip:
            out.append(
                Check(
                    "snat.snat_ip is an EIP of the NAT gateway",
                    p.snat.snat_ip in ips,
                    f"{p.snat.snat_ip} among {', '.join(ips) or 'none'}",
                    fix=f"set snat.snat_ip to one of {', '.join(ips) or 'its EIPs'}, "
                    "or to null for the first",
                )
            )
    else:
        detail = (
            f"no {wanted} in {vpc_id}"
            if not internet
            else f"several Internet NAT gateways ({', '.join(map(str, ids))}): "
            "set snat.nat_gateway_id"
        )
        fix = (
            f"create an Internet NAT gateway with an EIP in {vpc_id} (VPC console), then {AGAIN}"
            if not internet
            else f"set snat.nat_gateway_id to one of {', '.join(map(str, ids))}"
        )
        out.append(Check("Internet NAT gateway", False, detail, fix=fix))
    nat_gateway = str(ids[0]) if len(ids) == 1 else None
    out += checks_network.checks(session, f, nat_gateway)
    out.append(
        Check(
            "Alibaba Cloud permissions",
            True,
            "only the read calls above were exercised; write permissions (CreateSnatEntry, "
            "InstallClusterAddons) cannot be checked without calling them",
            level="warning",
        )
    )
    return out


def permission_checks(session: Session) -> list[Check]:
    """One SelfSubjectAccessReview per verb and resource the runbook uses."""
    ns = session.params.namespace
    out: list[Check] = []
    for group, resource, sub, verbs, scope in PERMISSIONS:
        namespace = ns if scope == "ns" else (None if scope == "cluster" else scope)
        name = f"{resource}/{sub}" if sub else resource
        full = f"{name}.{group}" if group else name
        missing = [v for v in verbs if not _allowed(session, group, resource, sub, v, namespace)]
        where = f" in namespace {namespace}" if namespace else " (cluster-wide)"
        out.append(
            Check(
                f"RBAC {full}",
                not missing,
                f"{', '.join(verbs)} allowed{where}"
                if not missing
                else f"missing verbs {', '.join(missing)} on {full}{where}",
                fix=f"bind a Role with these verbs in namespace {namespace} to the kube "
                "context's user"
                if namespace
                else "bind a ClusterRole with these verbs to the kube context's user",
            )
        )
    return out


def _allowed(
    session: Session, group: str, resource: str, sub: str, verb: str, namespace: str | None
) -> bool:
    attrs: dict[str, Any] = {"group": group, "resource": resource, "verb": verb}
    if sub:
        attrs["subresource"] = sub
    if namespace:
        attrs["namespace"] = namespace
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    with k8s_errors("create", "SelfSubjectAccessReview", f"{verb} {resource}"):
        resp = session.authz.create_self_subject_access_review(
            body, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
    data: dict[str, Any] = json.loads(resp.data)
    return bool((data.get("status") or {}).get("allowed"))


def checks(session: Session, f: Facts | None = None) -> list[Check]:
    """All findings: cloud facts first, then MSE authorization, then Kubernetes permissions,
    then the Services and Secrets the policies name."""
    from egress_lib.steps import checks_authorization, checks_references

    f = f or facts(session)
    authorization = checks_authorization.checks(session, f)
    found = cloud_checks(session, f) + authorization + permission_checks(session)
    return found + checks_references.checks(session)


def checks_table(found: list[Check]) -> Table:
    """Checks to read: ✓, ⚠ warning or ✗ error, and the fix of each failed one."""
    rows = [[c.mark, c.name, c.detail, "" if c.ok else c.fix] for c in found]
    if all(c.ok for c in found):
        return Table(["Result", "Check", "Detail"], [r[:3] for r in rows], empty="no checks")
    return Table(["Result", "Check", "Detail", "Fix"], rows)


def checks_frame(found: list[Check]) -> pd.DataFrame:
    """Checks as a DataFrame (Check, OK, Level, Detail, Fix)."""
    frame: pd.DataFrame = pd.DataFrame(
        [[c.name, c.ok, c.level, c.detail, c.fix] for c in found],
        columns=["Check", "OK", "Level", "Detail", "Fix"],
    )
    return frame


# How a check's outcome starts its plan detail; failed_checks reads the blocking ones back.
_BLOCKING = "✗ error: "


def _plan_detail(c: Check) -> str:
    if c.ok:
        return f"✓ {c.detail}"
    fix = f"; fix: {c.fix}" if c.fix else ""
    return f"{c.mark}: {c.detail}{fix}"


def plan(session: Session) -> Plan:
    """The checks to run, as ``check`` entries with their current outcome (reads only)."""
    found = checks(session)
    return Plan(
        STEP,
        [Change("check", "Check", c.name, _plan_detail(c)) for c in found],
        [f"{c.name}: {c.detail}" for c in found if not c.ok and c.level == "warning"],
    )


def failed_checks(plan: Plan) -> str:
    """The failed error-level checks of a preflight plan, as one line ("" when none)."""
    return "; ".join(
        f"{c.name}: {c.detail.removeprefix(_BLOCKING)}"
        for c in plan.changes
        if c.detail.startswith(_BLOCKING)
    )


def summary(found: list[Check]) -> str:
    """One line: how many checks passed, failed and warned."""
    failed = sum(c.blocking for c in found)
    warned = sum(not c.ok and c.level == "warning" for c in found)
    parts = [f"{len(found) - failed - warned} of {len(found)} checks passed"]
    if failed:
        parts.append(f"{failed} failed ✗")
    if warned:
        parts.append(f"{warned} warning(s) ⚠")
    return ", ".join(parts)


def apply(session: Session, plan: Plan | None = None) -> StepResult:
    """Run every check; raise :class:`PreconditionFailed` naming the failed ones.

    The notebook shows the checks table just above, so neither the result nor the error
    repeats it: they say how many passed or failed, and the error names the failed ones.
    """
    f = facts(session)
    found = checks(session, f)
    failed = [c for c in found if c.blocking]
    warnings = [f"{c.name}: {c.detail}" for c in found if not c.ok and c.level == "warning"]
    if failed:
        names = ", ".join(c.name for c in failed)
        raise PreconditionFailed(
            f"{summary(found)}; each ✗ in the checks table above says how to fix it: {names}"
        )
    tables = {"checks": checks_frame(found), **f.to_frames()}
    changes = [Change("check", "Check", c.name, _plan_detail(c)) for c in found]
    done = f"{summary(found)} (the checks table above); nothing changed"
    return StepResult(STEP, changes, [], tables, warnings, summary=done)
