"""An operator in JupyterLab: plan, Apply button, live wait, a Failed gateway and its remedy.

The story, in one sandbox: 02-create-gateway with ``approve = False`` shows its plan and an
Apply button; a click starts the gateway, which the sandbox fails while it is Pending, and the
error box shows the controller's Events and how to recover. The operator deletes the Failed
MseIngressConfig as the box says, runs the notebook again, clicks Apply, watches the wait
display move while the gateway is Pending, and sees it Listening with the CLB table.
"""

from __future__ import annotations

import getpass
import json
import re
import time
from typing import Any

import pytest
from browser_support import REPO, menu, shot, wait_kernel_idle
from waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

NOTEBOOK = "02-create-gateway.ipynb"


def _session(approve: bool) -> Any:
    from egress_lib import connect, load_parameters

    params = load_parameters(REPO / "parameters" / "sandbox.yaml")
    return connect(params.model_copy(update={"approve": approve}))


def _open_and_run_all(page: Any, lab: Any) -> None:
    page.goto(lab.notebook_url(NOTEBOOK))
    page.locator(".jp-Notebook").first.wait_for()
    wait_kernel_idle(page)
    menu(page, "Run", "Run All Cells")
    # The first code cell's prompt gets its number once the kernel ran it.
    page.locator(".jp-InputPrompt", has_text="[1]:").first.wait_for(timeout=60_000)


def _apply_button(page: Any) -> Any:
    return page.locator(".egress-apply-panel button.egress-apply").last


def test_apply_button_failed_gateway_then_listening(lab: Any, page: Any) -> None:
    box = lab.box
    from egress_lib import steps

    session = _session(approve=True)
    steps.controller.apply(session)  # step 01: the MseIngressConfig CRD and the controller
    box.controls.set_transition("mse_gateway", {"mode": "manual"})  # Pending until told

    # 1. The plan, and the button below it. Nothing is written before the click.
    _open_and_run_all(page, lab)
    apply = _apply_button(page)
    apply.wait_for()
    wait_kernel_idle(page)
    assert "Plan for 02-create-gateway" in page.content()
    assert (
        session.custom.list_cluster_custom_object(
            "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs"
        )["items"]
        == []
    ), "a plan-only run wrote a MseIngressConfig"
    shot(page, "01-plan-with-apply-button", panel=True)

    # 2. Click: the wait display appears; the sandbox fails the gateway while it is Pending.
    apply.click()
    wait_line = page.locator(".egress-wait-line").last
    wait_line.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.egress-wait-line')].some("
        "e => e.textContent.includes('waiting for MseIngressConfig egress-gateway'))"
    )
    box.controls.mse_fail({"name": "egress-gateway", "message": "vSwitch has no free IP"})
    error_box = page.locator(".egress-error").last
    error_box.wait_for(timeout=60_000)
    text = error_box.inner_text()
    assert "Failed" in text and "vSwitch has no free IP" in text, text
    assert "Events" in text, text  # the controller's Events, as kubectl describe shows them
    assert "delete" in text.lower(), text  # the remedy: delete the Failed config, re-run 02
    assert page.locator(".egress-apply-panel button:disabled").count() >= 2
    shot(page, "02-failed-gateway-error-box", locator=error_box)

    # 3. The operator follows the remedy, then runs the notebook again. (From now on the
    # sandbox moves the gateway on its own: 4 s Pending, 4 s Running, then Listening.)
    box.controls.set_transition("mse_gateway", {"mode": "timed", "seconds": 4})
    session.custom.delete_cluster_custom_object(
        "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs", "egress-gateway"
    )
    # As `kubectl delete` does: wait until the controller has let go (its finalizer).
    wait_for(
        lambda: (
            not session.custom.list_cluster_custom_object(
                "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs"
            )["items"]
        ),
        timeout=60,
        what="the Failed MseIngressConfig to be deleted",
    )
    menu(page, "Kernel", "Restart Kernel and Run All Cells…")
    page.locator(".jp-Dialog").get_by_role("button", name="Confirm Kernel Restart").click()
    page.wait_for_timeout(1000)
    wait_kernel_idle(page)
    apply = _apply_button(page)
    apply.wait_for()
    assert apply.is_enabled()

    # 4. Click: the display moves while the gateway is Pending, then Listening and the CLB.
    apply.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.egress-wait-line')].some("
        "e => /waiting for MseIngressConfig egress-gateway: (present|Pending)/.test(e.textContent))"
    )
    line = page.locator(".egress-wait-line").last
    first = line.inner_text()
    time.sleep(2.5)
    second = line.inner_text()
    assert first != second, f"the wait display did not change in 2.5 s: {first!r}"
    shot(page, "03-waiting-for-the-gateway", panel=True)
    status = page.locator(".egress-apply-panel").last
    status.get_by_text(re.compile("Applied by")).wait_for(timeout=90_000)
    panel_text = status.inner_text()
    assert "done after" in panel_text  # the wait's last line: the gateway is ready
    assert "PRIVATE_NET" in panel_text and "lb-" in panel_text  # the CLB table, as MSE reports it
    assert apply.is_disabled() and _apply_button(page).is_disabled()
    shot(page, "04-applied-listening-with-clb", panel=True)

    # The cluster has exactly what the plan showed; the record names who clicked.
    phase = session.custom.get_cluster_custom_object(
        "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs", "egress-gateway"
    )["status"]["phase"]
    assert phase == "Listening"
    records = sorted(lab.runs.glob("sandbox/*/run.json"))
    assert len(records) == 2  # the failed apply and this one
    last = json.loads(records[-1].read_text())
    assert last["command"] == "notebook" and last["status"] == "ok"
    assert last["approval"]["by"] == getpass.getuser()
    assert last["approval"]["via"] == "Apply button in JupyterLab"
    assert [s["step"] for s in last["steps"]] == ["02-create-gateway"]
    planned = {(c["action"], c["kind"], c["name"]) for c in last["steps"][0]["plan"]}
    applied = {(c["action"], c["kind"], c["name"]) for c in last["steps"][0]["applied"]}
    assert applied <= planned and ("create", "MseIngressConfig", "egress-gateway") in applied
    first_record = json.loads(records[0].read_text())
    assert first_record["status"] == "failed"
