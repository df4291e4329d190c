"""The VPC rules over CloudState, without HTTP: queries and the SNAT entry lifecycle.

SNAT rules
(https://www.alibabacloud.com/help/en/vpc/developer-reference/api-vpc-2016-04-28-createsnatentry and
its DeleteSnatEntry/ModifySnatEntry siblings), strict like the real service:
* the table must exist (404 InvalidSnatTableId.NotFound) and its NAT gateway be Available
  (400 IncorrectStatus.NATGW);
* exactly one of SourceVSwitchId / SourceCIDR (400 INVALID_PARAMETER otherwise [UNCONFIRMED code]);
* the vSwitch must exist *in the NAT gateway's VPC* (404 InvalidVSwitchId.NotFound for both
  [UNCONFIRMED: the real code for a vSwitch of another VPC]);
* a source whose CIDR equals an existing entry's -> 400 Forbidden.SourceVSwitchId.Duplicated;
  one that overlaps an existing entry's -> 400 OperationUnsupported.CidrConflict;
* every SnatIp must be an IPv4 address (400 InvalidSnatIp.Malformed) of an EIP bound to this
  NAT gateway (404 InvalidSnatIp.NotFound);
* SnatEntryName: 2..128 characters, starts with a letter, letters/digits/``._-``
  (400 InvalidParameter.Name.Malformed);
* no entry can be modified or deleted while any entry of the table is Pending (or the entry
  itself is Deleting): 400 IncorretSnatEntryStatus (sic);
* ClientToken: the same token with the same parameters returns the first result without a
  second change; with different parameters 400 IdempotentParameterMismatch [UNCONFIRMED].
Creating is allowed while other entries are Pending [UNCONFIRMED].
DryRun checks only what the real DryRun documents (required parameters, format, permission),
not the business rules above.

NAT gateways: one the cloud holds as ``Creating`` (the topology's ``status: Creating``, or a
loaded state) becomes ``Available`` after the ``nat_gateway`` transition, counted from
``resume()``. Until then its SNAT table takes no new entries (IncorrectStatus.NATGW).
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.model import CloudModel
from egress_sandbox.aliyun.records import (
    ClientTokenRecord,
    Eip,
    NatGateway,
    RouteEntry,
    RouteTable,
    SnatEntry,
    Vpc,
    VSwitch,
)

_NAME = re.compile(r"^[A-Za-z\u4e00-\u9fa5][A-Za-z0-9\u4e00-\u9fa5._-]{1,127}$")


def validate_snat_entry_name(name: str | None) -> None:
    if name is not None and not _NAME.match(name):
        raise errors.InvalidNameMalformed()


def validate_snat_ips(snat_ips: list[str]) -> None:
    for ip in snat_ips:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise errors.InvalidSnatIpMalformed() from None


@dataclass(frozen=True)
class SnatSpec:
    """What CreateSnatEntry asks for, already syntactically valid."""

    snat_table_id: str
    snat_ips: list[str]
    source_vswitch_id: str | None
    source_cidr: str | None
    name: str | None
    eip_affinity: int


class VpcModel(CloudModel):
    def resume(self) -> None:
        """Schedule the next step of every NAT gateway and SNAT entry caught mid-transition.

        NAT gateways ``Creating`` -> ``Available``; SNAT entries ``Pending`` -> ``Available``
        and ``Deleting`` -> gone, each under the current mode of its kind (so ``manual`` still
        waits for ``advance``).
        """
        with self.lock:
            creating = [
                n.nat_gateway_id for n in self.cloud.nat_gateways.values() if n.status == "Creating"
            ]
            snat = [
                (e.snat_entry_id, e.status)
                for e in self.cloud.snat_entries.values()
                if e.status in ("Pending", "Deleting")
            ]
        for nat_gateway_id in creating:
            self._move_later(
                self._transitions.nat_gateway,
                "nat_gateways",
                nat_gateway_id,
                expect="Creating",
                to="Available",
                reason=f"nat {nat_gateway_id} available after create",
            )
        for entry_id, status in snat:
            self._move_later(
                self._transitions.snat_entry,
                "snat_entries",
                entry_id,
                expect=status,
                to="Available" if status == "Pending" else None,
                reason=f"snat {entry_id} resumed from {status}",
            )

    # --- queries (each returns copies, safe to render outside the lock) ---------------------

    def vpcs(self) -> list[Vpc]:
        return self._copies(self.cloud.vpcs)

    def vswitches(self) -> list[VSwitch]:
        return self._copies(self.cloud.vswitches)

    def vswitch(self, vswitch_id: str) -> VSwitch:
        return self._copy_of(self.cloud.vswitches, vswitch_id, errors.InvalidVSwitchIdNotFound)

    def nat_gateways(self) -> list[NatGateway]:
        return self._copies(self.cloud.nat_gateways)

    def eips(self) -> list[Eip]:
        return self._copies(self.cloud.eips)

    def snat_entries(self) -> list[SnatEntry]:
        return self._copies(self.cloud.snat_entries)

    def route_tables(self) -> list[RouteTable]:
        return self._copies(self.cloud.route_tables)

    def route_entries(self) -> list[RouteEntry]:
        return self._copies(self.cloud.route_entries)

    def route_table_vswitches(self, table: RouteTable) -> list[str]:
        """The vSwitches the table serves: its bound ones, or (System) every unbound one."""
        with self.lock:
            return [
                v.vswitch_id
                for v in self.cloud.vswitches.values()
                if self.route_table_id_of(v.vswitch_id)[0] == table.route_table_id
            ]

    def route_table_id_of(self, vswitch_id: str) -> tuple[str, str]:
        """(RouteTableId, RouteTableType) of the table that serves the vSwitch."""
        with self.lock:
            table = self.cloud.route_table_of(vswitch_id)
            return (table.route_table_id, table.route_table_type) if table else ("", "")

    def nat_ip_list(self, nat_gateway_id: str) -> list[tuple[Eip, bool]]:
        """The EIPs bound to a NAT gateway, each with whether an SNAT entry uses it."""
        with self.lock:
            used = {
                ip.strip()
                for e in self.cloud.snat_entries.values()
                if e.nat_gateway_id == nat_gateway_id
                for ip in e.snat_ip.split(",")
            }
            return [
                (copy.copy(e), e.ip_address in used) for e in self.cloud.eips_of_nat(nat_gateway_id)
            ]

    def nat_by_table(self, snat_table_id: str) -> NatGateway:
        with self.lock:
            return copy.copy(self._nat_for_table(snat_table_id))

    def nat(self, nat_gateway_id: str) -> NatGateway:
        return self._copy_of(
            self.cloud.nat_gateways, nat_gateway_id, errors.InvalidNatGatewayIdNotFound
        )

    # --- ClientToken idempotency -----------------------------------------------------------

    def _replay(self, action: str, token: str | None, fingerprint: str) -> str | None:
        """The first call's result for this token, or None when the token is new."""
        if not token:
            return None
        record = self.cloud.client_tokens.get(f"{action}:{token}")
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise errors.IdempotentParameterMismatch()
        return record.result

    def _remember(self, action: str, token: str | None, fingerprint: str, result: str) -> None:
        if token:
            self.cloud.client_tokens[f"{action}:{token}"] = ClientTokenRecord(
                action, fingerprint, result
            )

    @staticmethod
    def fingerprint(params: dict[str, str]) -> str:
        relevant = {k: v for k, v in params.items() if k not in ("ClientToken", "DryRun")}
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()

    # --- SNAT rules -------------------------------------------------------------------------

    def _source_network(
        self, nat: NatGateway, vswitch_id: str | None, cidr: str | None
    ) -> ipaddress.IPv4Network:
        if vswitch_id:
            vsw = self.cloud.vswitches.get(vswitch_id)
            if vsw is None or vsw.vpc_id != nat.vpc_id:
                raise errors.InvalidVSwitchIdNotFound()
            return ipaddress.IPv4Network(vsw.cidr_block)
        assert cidr is not None
        return ipaddress.IPv4Network(cidr)

    def _entry_network(self, entry: SnatEntry) -> ipaddress.IPv4Network | None:
        if entry.source_vswitch_id:
            vsw = self.cloud.vswitches.get(entry.source_vswitch_id)
            return ipaddress.IPv4Network(vsw.cidr_block) if vsw else None
        return ipaddress.IPv4Network(entry.source_cidr) if entry.source_cidr else None

    def _check_snat_ips(self, nat: NatGateway, snat_ips: list[str]) -> None:
        bound = {e.ip_address for e in self.cloud.eips_of_nat(nat.nat_gateway_id)}
        for ip in snat_ips:
            if ip not in bound:
                raise errors.InvalidSnatIpNotFound(
                    f"The specified SnatIp {ip} is not bound to the NAT gateway."
                )

    def _table_entries(self, snat_table_id: str) -> list[SnatEntry]:
        return [e for e in self.cloud.snat_entries.values() if e.snat_table_id == snat_table_id]

    def _nat_for_table(self, snat_table_id: str) -> NatGateway:
        for nat in self.cloud.nat_gateways.values():
            if nat.snat_table_id == snat_table_id:
                return nat
        raise errors.InvalidSnatTableIdNotFound()

    def create_snat_entry(
        self, spec: SnatSpec, *, client_token: str | None, fingerprint: str
    ) -> str:
        with self.lock:
            replay = self._replay("CreateSnatEntry", client_token, fingerprint)
            if replay is not None:
                return replay
            nat = self._nat_for_table(spec.snat_table_id)
            if nat.status != "Available":
                raise errors.NatGatewayStatusIncorrect()
            network = self._source_network(nat, spec.source_vswitch_id, spec.source_cidr)
            for other in self._table_entries(spec.snat_table_id):
                if spec.source_vswitch_id and other.source_vswitch_id == spec.source_vswitch_id:
                    raise errors.SourceVSwitchIdDuplicated()
                other_net = self._entry_network(other)
                if other_net is None:
                    continue
                if other_net == network:
                    raise errors.SourceVSwitchIdDuplicated()
                if other_net.overlaps(network):
                    raise errors.CidrConflict()
            self._check_snat_ips(nat, spec.snat_ips)
            entry = SnatEntry(
                snat_entry_id=self._ids.resource_id("snat"),
                snat_table_id=spec.snat_table_id,
                nat_gateway_id=nat.nat_gateway_id,
                snat_ip=",".join(spec.snat_ips),
                source_vswitch_id=spec.source_vswitch_id or "",
                source_cidr=spec.source_cidr or "",
                snat_entry_name=spec.name or "",
                status="Pending",
                eip_affinity=str(spec.eip_affinity),
            )
            self.cloud.snat_entries[entry.snat_entry_id] = entry
            self._remember("CreateSnatEntry", client_token, fingerprint, entry.snat_entry_id)
            self._schedule_available(entry.snat_entry_id, "create")
            return entry.snat_entry_id

    def _entry_in_table(self, snat_table_id: str, snat_entry_id: str) -> SnatEntry:
        self._nat_for_table(snat_table_id)
        entry = self.cloud.snat_entries.get(snat_entry_id)
        if entry is None or entry.snat_table_id != snat_table_id:
            raise errors.InvalidSnatEntryIdNotFound()
        return entry

    def _check_table_idle(self, entry: SnatEntry) -> None:
        if entry.status != "Available" or any(
            e.status == "Pending" for e in self._table_entries(entry.snat_table_id)
        ):
            raise errors.SnatEntryStatusIncorrect()

    def modify_snat_entry(
        self,
        snat_table_id: str,
        snat_entry_id: str,
        *,
        snat_ips: list[str] | None,
        name: str | None,
        eip_affinity: int | None,
        client_token: str | None,
        fingerprint: str,
    ) -> None:
        with self.lock:
            if self._replay("ModifySnatEntry", client_token, fingerprint) is not None:
                return
            entry = self._entry_in_table(snat_table_id, snat_entry_id)
            self._check_table_idle(entry)
            if snat_ips is not None:
                self._check_snat_ips(self._nat_for_table(snat_table_id), snat_ips)
                entry.snat_ip = ",".join(snat_ips)
            if name is not None:
                entry.snat_entry_name = name
            if eip_affinity is not None:
                entry.eip_affinity = str(eip_affinity)
            entry.status = "Pending"
            self._remember("ModifySnatEntry", client_token, fingerprint, snat_entry_id)
            self._schedule_available(snat_entry_id, "modify")

    def delete_snat_entry(
        self, snat_table_id: str, snat_entry_id: str, *, client_token: str | None, fingerprint: str
    ) -> None:
        with self.lock:
            if self._replay("DeleteSnatEntry", client_token, fingerprint) is not None:
                return
            entry = self._entry_in_table(snat_table_id, snat_entry_id)
            self._check_table_idle(entry)
            entry.status = "Deleting"
            self._remember("DeleteSnatEntry", client_token, fingerprint, snat_entry_id)

            self._move_later(
                self._transitions.snat_entry,
                "snat_entries",
                snat_entry_id,
                expect="Deleting",
                to=None,
                reason=f"snat {snat_entry_id} deleted",
            )

    def _schedule_available(self, snat_entry_id: str, why: str) -> None:
        self._move_later(
            self._transitions.snat_entry,
            "snat_entries",
            snat_entry_id,
            expect="Pending",
            to="Available",
            reason=f"snat {snat_entry_id} available after {why}",
        )

    def advance_snat_entry(self, snat_entry_id: str) -> bool:
        """Manual mode: move the entry one step (Pending->Available, Deleting->gone)."""
        return self.advance(snat_entry_id)

    def advance_nat_gateway(self, nat_gateway_id: str) -> bool:
        """Manual mode: move a Creating NAT gateway to Available."""
        return self.advance(nat_gateway_id)
