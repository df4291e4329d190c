"""Verify's direct path: the EIP egress should use, and whether pods get out without the gateway.

The expected EIP is the SnatIp of the Available SNAT entries that serve a gateway vSwitch (its
own SourceVSwitchId, or a SourceCIDR that covers it), read as step 03 reads them. A pod that
reaches a destination directly left through something else; the SNAT entries serving the
nodes' vSwitches (from the node pools, as preflight finds them) are the usual culprit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from egress_lib import inventory
from egress_lib.parameters import Destination
from egress_lib.pod_probe import ProbeOutput, Transfer, write_out
from egress_lib.resources import SnatEntry
from egress_lib.steps.verify_evidence import source_address
from egress_lib.steps.verify_rows import DIRECT, VerifyRow

if TYPE_CHECKING:
    from egress_lib.clients import Session

# curl exit codes that mean no connection was made: could not resolve the host (6), could not
# connect (7), the proxy refused (97: the sandbox's pod network answers so for "no route").
# 28 (timed out) counts only when no TCP connection was made (time_connect 0).
BLOCKED_EXITS = frozenset({6, 7, 97})
TIMED_OUT = 28
CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class WayOut:
    """An Available SNAT entry that gives a node vSwitch an EIP."""

    vswitch: str
    entry: SnatEntry

    def __str__(self) -> str:
        how = (
            f"SourceVSwitchId {self.entry.source_vswitch_id}"
            if self.entry.source_vswitch_id
            else f"SourceCIDR {self.entry.source_cidr}"
        )
        return (
            f"SNAT entry {self.entry.id} ({self.entry.name or 'no name'}, {how}, SnatIp "
            f"{self.entry.snat_ip}, SnatTableId {self.entry.table_id}) gives {self.vswitch} "
            "its own way out"
        )


@dataclass(frozen=True)
class EgressFacts:
    """What the cloud says about the way out, for the rows' expected EIP and fixes."""

    expected_eips: tuple[str, ...] = ()
    gateway_vswitches: tuple[str, ...] = ()
    node_vswitches: tuple[str, ...] = ()
    ways_out: tuple[WayOut, ...] = ()
    vswitch_cidrs: dict[str, str] = field(default_factory=dict)
    all_entries: tuple[SnatEntry, ...] = ()

    def node_vswitch_of(self, host_ip: str | None) -> str | None:
        """The node vSwitch whose CIDR holds ``host_ip`` (the probe pod's node)."""
        if not host_ip:
            return None
        try:
            addr = ipaddress.ip_address(host_ip)
        except ValueError:
            return None
        return next(
            (
                v
                for v in self.node_vswitches
                if v in self.vswitch_cidrs
                and addr in ipaddress.ip_network(self.vswitch_cidrs[v], strict=False)
            ),
            None,
        )


def _serves(entry: SnatEntry, vswitch: str, cidr: str | None) -> bool:
    if entry.source_vswitch_id:
        return entry.source_vswitch_id == vswitch
    if not entry.source_cidr or not cidr:
        return False
    try:
        return ipaddress.ip_network(cidr).subnet_of(ipaddress.ip_network(entry.source_cidr))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False


def facts_from(
    entries: list[SnatEntry],
    vswitch_cidrs: dict[str, str],
    gateway_vswitches: list[str],
    node_vswitches: list[str],
) -> EgressFacts:
    """The expected EIPs and the nodes' ways out among ``entries`` (pure)."""
    available = [e for e in entries if e.status == "Available"]
    expected: list[str] = []
    for vsw in gateway_vswitches:
        for e in available:
            if _serves(e, vsw, vswitch_cidrs.get(vsw)):
                expected += [ip for ip in e.snat_ips if ip not in expected]
    ways = [
        WayOut(vsw, e)
        for vsw in node_vswitches
        for e in available
        if _serves(e, vsw, vswitch_cidrs.get(vsw))
    ]
    return EgressFacts(
        tuple(expected),
        tuple(gateway_vswitches),
        tuple(node_vswitches),
        tuple(ways),
        dict(vswitch_cidrs),
        tuple(entries),
    )


def gather(session: Session) -> EgressFacts:
    """Read the SNAT entries of the VPC's Internet NAT gateways, the vSwitches, the node pools."""
    p = session.params
    vpc_id = str(inventory.cluster_detail(session).get("vpc_id") or "")
    cidrs = {v.id: v.cidr_block for v in inventory.vswitch_records(session, vpc_id)}
    entries = [
        e
        for nat in inventory.nat_gateway_records(session, vpc_id)
        if nat.is_internet
        for table in nat.snat_table_ids
        for e in inventory.snat_table(session, table)
    ]
    nodes = inventory.node_vswitch_ids(inventory.node_pools(session))
    return facts_from(entries, cidrs, list(p.gateway.vswitches), nodes)


def direct_url(dest: Destination, host: str) -> str:
    """The destination as a pod would call it without the gateway: its real scheme and port."""
    scheme = "https" if dest.backend_protocol == "HTTPS" else "http"
    default = 443 if scheme == "https" else 80
    port = "" if dest.port == default else f":{dest.port}"
    return f"{scheme}://{host}{port}{dest.path}"


def direct_route(url: str) -> str:
    """What the Route column says for a direct request: no rule, straight to host:port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"none: straight to {parts.hostname}:{port}"


def direct_args(urls: list[tuple[str, str]], timeout: int) -> list[str]:
    """One curl for every (tag, url), ``--next`` between them; no --connect-to, no gateway."""
    args: list[str] = []
    for i, (tag, url) in enumerate(urls):
        if i:
            args.append("--next")
        args += [
            "-s",
            "-w",
            write_out(tag),
            "--connect-timeout",
            str(min(CONNECT_TIMEOUT_SECONDS, timeout)),
            "--max-time",
            str(timeout),
            url,
        ]
    return args


def _blocked(t: Transfer) -> bool:
    if t.status is not None:
        return False
    return t.curl_exit in BLOCKED_EXITS or (t.curl_exit == TIMED_OUT and t.connect_seconds == 0)


def _ways_for(facts: EgressFacts, probe: ProbeOutput, seen: str | None) -> list[WayOut]:
    node = facts.node_vswitch_of(probe.host_ip)
    ways = [w for w in facts.ways_out if node is None or w.vswitch == node]
    if seen:
        # The entry whose EIP the answer came from names the way out best.
        by_ip = [w for w in ways if seen in w.entry.snat_ips]
        ways = by_ip or ways
    return ways


def direct_row(
    dest: Destination, url: str, t: Transfer | None, probe: ProbeOutput, facts: EgressFacts
) -> VerifyRow:
    """Pass when curl could not connect; fail on any answer, naming the way out it took."""
    expected = ", ".join(facts.expected_eips)
    route = direct_route(url)
    if t is None:
        tail = (probe.log.strip().splitlines() or ["no output"])[-1][:200]
        return VerifyRow(
            dest.name,
            DIRECT,
            url,
            None,
            "fail",
            f"curl gave no result (pod {probe.phase}, exit {probe.exit_code}): {tail}",
            route=route,
            expected=expected,
            fix="re-run 06-verify; if it repeats, raise verify.timeout_seconds",
        )
    if _blocked(t):
        return VerifyRow(
            dest.name,
            DIRECT,
            url,
            None,
            "pass",
            f"blocked: no connection without the gateway (curl exit {t.curl_exit}: "
            f"{t.error or 'no answer'})",
            route=route,
            seconds=t.seconds,
            expected=expected,
        )
    seen = source_address(t.body) if t.status is not None else None
    ways = _ways_for(facts, probe, seen)
    node = facts.node_vswitch_of(probe.host_ip)
    where = node or ", ".join(facts.node_vswitches) or "the nodes' vSwitch"
    got = (
        f"HTTP {t.status}"
        if t.status is not None
        else f"a connection but no HTTP answer (curl exit {t.curl_exit}: {t.error})"
    )
    detail = f"{got} without the gateway" + (f", from {seen}" if seen else "")
    if ways:
        fix = "; ".join(str(w) for w in ways) + (
            ": remove it or scope it to the gateway's vSwitch " + ", ".join(facts.gateway_vswitches)
        )
    else:
        fix = (
            f"no SNAT entry serves {where}"
            + (f" and none uses {seen}" if seen else "")
            + ": a node's own EIP or public IP (or another route out) lets pods bypass the "
            "gateway; unbind it"
        )
    return VerifyRow(
        dest.name,
        DIRECT,
        url,
        t.status,
        "fail",
        f"{detail}: pods on {where} have their own way out",
        route=route,
        seconds=t.seconds,
        source=seen,
        expected=expected,
        fix=fix,
        ways_out=tuple(str(w) for w in ways),
    )
