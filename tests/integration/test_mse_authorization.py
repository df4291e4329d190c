"""The MSE side of a first real run: missing RAM roles, and a gateway with a public SLB.

Each test gets a fresh sandbox on block 33 (one at a time) whose topology differs from the
default in one switch; the sandbox's audit log witnesses that preflight changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import PreconditionFailed, Session, connect, load_parameters, steps
from egress_lib.errors import StepFailed
from egress_lib.steps.checks_authorization import QUICK_AUTHORIZATION
from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "parameters" / "sandbox.yaml"
ROLES = ("AliyunServiceRoleForMSE", "AliyunCSManagedMseRole")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@pytest.fixture
def session() -> Iterator[Session]:
    s = connect(load_parameters(PARAMS, {"approve": True}))
    yield s
    s.close()


@pytest.fixture
def no_roles(tmp_path: Path) -> Iterator[Any]:
    topology = Topology.loopback(33).model_copy(update={"mse_roles": False})
    with sandbox_home(tmp_path / "home", 33, topology) as box:
        yield box


@pytest.fixture
def public_slb(tmp_path: Path) -> Iterator[Any]:
    topology = Topology.loopback(33).model_copy(update={"mse_public_slb": True})
    with sandbox_home(tmp_path / "home", 33, topology) as box:
        yield box


def test_preflight_without_mse_roles_fails_naming_both_and_changes_nothing(
    no_roles: Any, session: Session
) -> None:
    since = now()
    found = steps.preflight.checks(session)
    failed = {c.name: c for c in found if c.blocking}
    assert set(failed) == {f"RAM role {r}" for r in ROLES}, failed
    for role in ROLES:
        check = failed[f"RAM role {role}"]
        assert QUICK_AUTHORIZATION in check.detail and QUICK_AUTHORIZATION in check.fix
    assert "aliyun ram CreateServiceLinkedRole --ServiceName mse.aliyuncs.com" in (
        failed["RAM role AliyunServiceRoleForMSE"].fix
    )
    plan = steps.preflight.plan(session)
    assert QUICK_AUTHORIZATION in steps.preflight.failed_checks(plan)
    with pytest.raises(PreconditionFailed) as err:
        steps.preflight.apply(session)
    assert all(role in str(err.value) for role in ROLES)
    assert no_roles.audit.records(since=since, mutating=True) == []
    reads = {(r.api, r.action) for r in no_roles.audit.records(since=since)}
    assert ("ram", "GetRole") in reads


def test_without_mse_roles_the_addon_installs_but_the_gateway_fails(
    no_roles: Any, session: Session
) -> None:
    steps.controller.apply(session)
    assert steps.controller.installed_version(session)
    with pytest.raises(StepFailed) as err:
        steps.gateway.apply(session)
    assert "is Failed" in str(err.value) and "AliyunCSManagedMseRole" in str(err.value)


def test_step_02_fails_naming_a_public_slb_mse_reports(public_slb: Any, session: Session) -> None:
    steps.controller.apply(session)
    with pytest.raises(StepFailed) as err:
        steps.gateway.apply(session)
    (gw,) = public_slb.cloud.gateways.values()
    public = public_slb.cloud.load_balancers[gw.public_slb_id]
    text = str(err.value)
    assert gw.public_slb_id in text and public.address in text and "Internet-facing" in text
    assert "unbind" in (err.value.remedy or "")
    frame = steps.gateway.clb_frame(session)
    assert set(frame["Type"]) == {"PRIVATE_NET", "PUB_NET"}
    # The failure comes before step 03: no SNAT entry opened egress for the gateway.
    assert not public_slb.cloud.snat_entries
