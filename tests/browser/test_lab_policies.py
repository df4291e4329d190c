"""An operator checks the egress policies in JupyterLab: notebook 07's table, plan and checks.

Steps 01..05 have run with ``parameters/sandbox-policies.yaml`` (as ``egress-runbook run``
would have); the operator opens 07 with the same parameters in its parameters cell, reads the
policy table and the plan, clicks the button, and reads one passing row per check.
"""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any

import pytest
from browser_support import REPO, menu, shot, wait_kernel_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

BLOCK = 44  # the lab fixture's sandbox for this module
NOTEBOOK = "07-egress-policies.ipynb"
POLICIES = REPO / "parameters" / "sandbox-policies.yaml"


def _cell_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "parameters_cell", REPO / "scripts" / "parameters_cell.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe_pods(session: Any) -> list[str]:
    pods = session.core.list_namespaced_pod("default").items
    return [p.metadata.name for p in pods if p.metadata.name.startswith("egress-policy-")]


def test_policy_checks_from_the_notebook(lab: Any, page: Any) -> None:
    from egress_lib import connect, load_parameters, steps

    session = connect(load_parameters(POLICIES).model_copy(update={"approve": True}))
    for step in steps.RUNBOOK[1:6]:  # 01..05, as a run before the notebook would have done
        step.module.apply(session)
    script = _cell_script()
    script.write([lab.root / NOTEBOOK], script.render_cell(POLICIES))

    page.goto(lab.notebook_url(NOTEBOOK))
    page.locator(".jp-Notebook").first.wait_for()
    wait_kernel_idle(page, timeout=90)
    menu(page, "Run", "Run All Cells")
    apply = page.locator(".egress-apply-panel button.egress-apply").last
    apply.wait_for(timeout=90_000)
    wait_kernel_idle(page, timeout=90)
    content = page.content()
    # The policy table names what each parameter becomes; the plan changes nothing after 05.
    assert "nginx.ingress.kubernetes.io/whitelist-source-range" in content
    assert "mse.ingress.kubernetes.io/route-limit-rps" in content
    assert "spec.global.ipAccessControl" in content
    assert "Plan for 07-egress-policies" in content
    assert _probe_pods(session) == [], "a plan-only run started probe pods"
    shot(page, "05-policies-plan", panel=True)

    apply.click()
    panel = page.locator(".egress-apply-panel").last
    panel.get_by_text(re.compile("Applied by")).wait_for(timeout=240_000)
    text = panel.inner_text()
    assert "local_rate_limited" in text  # the throttle's 429s
    assert "RBAC: access denied" in text  # a denied source
    assert "-shadow" in text  # the mirror's copies
    assert "✗" not in text, text  # no failing check
    shot(page, "06-policies-checked", panel=True)
    assert _probe_pods(session) == []  # every probe pod deleted
    session.close()
