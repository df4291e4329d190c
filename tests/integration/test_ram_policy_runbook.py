"""The RAM policy against a sandbox that authorizes every call by its RAM action (block 32).

Under the README's old RAM table step 01's plan fails on cs:Queryk8sComponentsUpdateVersion;
under policies/ram-policy.json the whole runbook and teardown pass; and each step passes with
only its own Statement, so the statements really are per step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_env import sandbox_home

from egress_lib import Parameters, Session, connect, load_parameters, steps
from egress_lib.errors import CloudApiError
from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
BLOCK = 32
POLICY: dict[str, Any] = json.loads((REPO / "policies" / "ram-policy.json").read_text())
STEP_ROWS = json.loads((REPO / "policies" / "ram-policy.steps.json").read_text())["rows"]


def allow(*actions: str) -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
    }


# The README's RAM table before the policy file existed: every action it listed, as one policy.
OLD_TABLE = allow(
    "cs:DescribeClusterDetail",
    "vpc:DescribeVpcs",
    "vpc:DescribeVSwitches",
    "vpc:DescribeNatGateways",
    "vpc:DescribeEipAddresses",
    "vpc:DescribeSnatTableEntries",
    "cs:DescribeClusterAddonsVersion",
    "cs:GetClusterAddonInstance",
    "cs:InstallClusterAddons",
    "cs:DescribeTaskInfo",
    "slb:DescribeLoadBalancers",
    "vpc:CreateSnatEntry",
    "vpc:DeleteSnatEntry",
)


@pytest.fixture
def params() -> Parameters:
    # These tests apply: they say yes explicitly (sandbox.yaml, like every default, says no).
    loaded = load_parameters(REPO / "parameters" / "sandbox.yaml")
    return loaded.model_copy(update={"approve": True})


def sandbox(tmp_path: Path, policy: dict[str, Any]) -> Any:
    topology = Topology.loopback(BLOCK).model_copy(update={"admin_ram_policy": policy})
    return sandbox_home(tmp_path / "home", BLOCK, topology)


@pytest.fixture
def session_for(params: Parameters) -> Iterator[Callable[[], Session]]:
    opened: list[Session] = []

    def make() -> Session:
        opened.append(connect(params))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


def _preflight(s: Session) -> None:
    found = steps.preflight.checks(s, steps.preflight.facts(s))
    assert all(c.ok for c in found if c.level == "error"), [c for c in found if not c.ok]
    steps.preflight.apply(s)


def _controller(s: Session) -> None:
    steps.controller.addon_table(s)
    steps.controller.apply(s, steps.controller.plan(s))
    steps.controller.addon_table(s)


def _gateway(s: Session) -> None:
    steps.gateway.apply(s, steps.gateway.plan(s))
    steps.gateway.clb_table(s)


def _snat(s: Session) -> None:
    steps.snat.snat_table(s)
    steps.snat.apply(s, steps.snat.plan(s))
    steps.snat.snat_table(s)


def _plain(module: Any) -> Callable[[Session], None]:
    def run(s: Session) -> None:
        module.apply(s, module.plan(s))

    return run


# What each step's notebook calls, by the step names of policies/ram-policy.steps.json.
RUNBOOK: list[tuple[str, Callable[[Session], None]]] = [
    ("00 preflight", _preflight),
    ("01 controller", _controller),
    ("02 gateway", _gateway),
    ("03 SNAT", _snat),
    ("04 services", _plain(steps.services)),
    ("05 ingress", _plain(steps.ingress)),
    ("06 verify", _plain(steps.verify)),
    ("99 teardown", _plain(steps.teardown)),
]


def denials(box: Any) -> list[str]:
    return [f"{r.api}:{r.action}" for r in box.audit.records() if r.status == 403]


def test_old_readme_table_fails_step_01_on_the_ram_action(
    tmp_path: Path, session_for: Callable[[], Session]
) -> None:
    with sandbox(tmp_path, OLD_TABLE) as box:
        s = session_for()
        # Straight to step 01, as an operator who trusts the table would go: preflight's newer
        # reads (node pools, route tables, ram:GetRole) are missing from the old table too.
        with pytest.raises(CloudApiError) as info:
            steps.controller.plan(s)
        err = info.value
        assert (err.code, err.status_code) == ("Forbidden.RAM", 403)
        assert err.auth_action == "cs:Queryk8sComponentsUpdateVersion"
        assert err.principal == "sandbox-admin"
        assert "The RAM action cs:Queryk8sComponentsUpdateVersion was denied" in err.remedy
        assert denials(box) == ["cs:DescribeClusterAddonsVersion"]
        assert box.audit.records(mutating=True) == []


def test_the_policy_file_runs_the_whole_runbook(
    tmp_path: Path, session_for: Callable[[], Session]
) -> None:
    with sandbox(tmp_path, POLICY) as box:
        s = session_for()
        for _, run in RUNBOOK:
            run(s)
        assert denials(box) == []
        assert steps.snat.entries_to_delete(s) == []


def test_each_step_needs_only_its_own_statement(
    tmp_path: Path, session_for: Callable[[], Session]
) -> None:
    statement = {r["step"]: r["statement"] for r in STEP_ROWS}
    with sandbox(tmp_path, POLICY) as box:
        s = session_for()
        key = box.cloud.access_keys[box.topology.access_key_id]
        for step, run in RUNBOOK:
            index = statement[step]
            own = [POLICY["Statement"][index]] if index is not None else []
            with box.cloud_lock:
                # A step without a Statement calls no cloud API: deny everything to show it.
                key.policy = (
                    {"Version": "1", "Statement": own}
                    if own
                    else {
                        "Version": "1",
                        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
                    }
                )
            run(s)
            assert denials(box) == [], step
