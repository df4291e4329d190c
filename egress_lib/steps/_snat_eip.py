"""Which EIP of the NAT gateway the SNAT entries use (pure: no cloud calls, unit-tested).

DescribeNatGateways lists every EIP of the gateway with its ``UsingStatus``: ``UsedBySnatTable``,
``UsedByForwardTable``, ``UsedByForwardSnatTable`` or ``Idle``
(https://www.alibabacloud.com/help/en/nat-gateway/latest/describenatgateways).

With ``snat.snat_ip`` null the order of preference is:

1. ``UsedBySnatTable``: the EIP the VPC already leaves through. Sharing one EIP between SNAT
   entries is the normal case (``SnatIp`` is even a list), the destinations' allowlists already
   know that address, and the other EIPs stay free for DNAT.
2. ``UsedByForwardSnatTable``: SNAT already uses it next to port-mapping DNAT, so it is known to
   be usable for SNAT; second, because the gateway's egress then shares the address of a
   published service.
3. ``Idle``: nothing uses it yet.
4. No status (a gateway whose IpLists does not name the EIP): the DescribeEipAddresses order.

``UsedByForwardTable`` alone is never chosen by itself: CreateSnatEntry refuses an EIP that a
DNAT entry maps with "any port" (IP mapping) with 400 ``Forbidden.IpUsedInForwardTable``
(https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-createsnatentry),
and which kind of DNAT entry holds it is not in IpLists; even port-mapped, the egress would
carry the public address of a published service. An operator who wants it sets
``snat.snat_ip`` to it; the plan says what that EIP is used for, and the cloud answers for
IP mapping. Within one status the API's order is kept, so the choice is stable across runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from egress_lib.errors import PreconditionFailed

# UsingStatus -> rank (lower is preferred) and the words the plan shows for it.
PREFERENCE: dict[str, tuple[int, str]] = {
    "UsedBySnatTable": (0, "already used by SNAT entries (shared, as is normal)"),
    "UsedByForwardSnatTable": (1, "already used by SNAT and port-mapping DNAT entries"),
    "Idle": (2, "idle: no SNAT or DNAT entry uses it yet"),
    "": (3, "no UsingStatus reported"),
}
FORWARD_ONLY = "UsedByForwardTable"


@dataclass(frozen=True)
class EipChoice:
    """The EIP the entries use and why (for the plan's detail)."""

    ip: str
    using_status: str
    reason: str


def describe(status: str) -> str:
    """What a UsingStatus means, in the plan's words."""
    if status == FORWARD_ONLY:
        return "used by DNAT entries only"
    known = PREFERENCE.get(status)
    return known[1] if known else f"UsingStatus {status}"


def choose(
    nat_gateway_id: str, eips: list[str], statuses: dict[str, str], wanted: str | None
) -> EipChoice:
    """The EIP for the SNAT entries among ``eips`` (bound to the gateway, in API order).

    ``statuses``: IpAddress -> UsingStatus from the gateway's IpLists; ``wanted``:
    ``snat.snat_ip``. Raises :class:`PreconditionFailed` when nothing fits.
    """
    if not eips:
        raise PreconditionFailed(
            f"NAT gateway {nat_gateway_id} has no EIP bound: bind one before adding SNAT"
        )
    listed = ", ".join(f"{ip} ({statuses.get(ip) or 'no UsingStatus'})" for ip in eips)
    if wanted:
        if wanted not in eips:
            raise PreconditionFailed(
                f"snat.snat_ip {wanted} is not an EIP of NAT gateway {nat_gateway_id} "
                f"(its EIPs: {listed})"
            )
        status = statuses.get(wanted, "")
        note = describe(status)
        if status == FORWARD_ONLY:
            note += (
                "; CreateSnatEntry refuses it (Forbidden.IpUsedInForwardTable) if a DNAT "
                "entry maps it with any port"
            )
        return EipChoice(wanted, status, f"snat.snat_ip, {note}")
    candidates = [ip for ip in eips if statuses.get(ip, "") in PREFERENCE]
    if not candidates:
        raise PreconditionFailed(
            f"every EIP of NAT gateway {nat_gateway_id} is used by DNAT entries only ({listed}): "
            "bind another EIP, or set snat.snat_ip to one of them if its DNAT entries are "
            "port mappings"
        )
    # min() keeps the first of equals: within one status the API's order decides.
    best = min(candidates, key=lambda ip: PREFERENCE[statuses.get(ip, "")][0])
    status = statuses.get(best, "")
    return EipChoice(best, status, f"chosen by UsingStatus: {describe(status)}")
