"""Against a real account (opt in; see conftest.py): preflight, every plan, and a full run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from egress_lib import steps

READ_STEPS = (
    steps.controller,
    steps.gateway,
    steps.snat,
    steps.services,
    steps.ingress,
    steps.verify,
    steps.teardown,
)


@pytest.mark.aliyun
def test_preflight_reads_every_fact_and_every_check_has_an_answer(real_session: Any) -> None:
    facts = steps.preflight.facts(real_session)
    assert facts.vpc is not None, "the cluster's VPC was not found"
    found = steps.preflight.checks(real_session, facts)
    assert found, "preflight made no checks"
    assert all(c.detail for c in found)


@pytest.mark.aliyun
@pytest.mark.parametrize("step", READ_STEPS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_plan_is_computed_with_reads_only(real_session: Any, step: Any) -> None:
    # Plans call only Describe/List/Get actions (and server-side dry runs): safe on any cluster.
    plan = step.plan(real_session)
    assert plan.step


@pytest.mark.aliyun_write
@pytest.mark.timeout(3600)
def test_the_whole_runbook_and_its_teardown_on_a_throwaway_cluster(
    real_params_file: Any, tmp_path: Any
) -> None:
    if os.environ.get("EGRESS_TEST_WRITE") != "yes":
        pytest.skip("writes to the cluster: set EGRESS_TEST_WRITE=yes as well")
    from egress_lib.cli import main

    path = str(real_params_file)
    assert main(["run", path, "--approve", "--out", str(tmp_path)]) == 0
    assert main(["teardown", path, "--approve", "--out", str(tmp_path)]) == 0
