"""The Apply button in a real kernel, as JupyterLab starts one; and no widget when headless.

A kernel started with ``JPY_SESSION_NAME`` (as jupyter_server sets it) gets an ApplyPanel from
``notebook.apply``; the test clicks it from the next cell, as the front end's comm message
would. The browser test (tests/browser) does the same through real JupyterLab and Chromium.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

# Not imported from conftest: several test folders have one, and the name resolves to whichever
# was loaded last.
REPO = Path(__file__).resolve().parents[2]

SETUP = """
from egress_lib import connect, load_parameters, notebook, steps
params = load_parameters({params!r})
session = connect(params)
plan = steps.gateway.plan(session)
panel = notebook.apply(steps.gateway, session, plan)
print(type(panel).__name__, plan.change_count)
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Any]:
    from sandbox_env import sandbox_home

    with sandbox_home(tmp_path / "sandbox", 31) as sandbox:
        from egress_lib import connect, load_parameters, steps

        params = load_parameters(REPO / "parameters" / "sandbox.yaml")
        steps.controller.apply(connect(params.model_copy(update={"approve": True})))
        yield sandbox


class Kernel:
    """One kernel, cells run one at a time; ``run`` returns the text the cell printed."""

    def __init__(self, client: NotebookClient, nb: Any) -> None:
        self.client, self.nb = client, nb

    def run(self, source: str) -> str:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.fixture
def kernel(box: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kernel]:
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "02-create-gateway.ipynb"))
    monkeypatch.setenv("EGRESS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("EGRESS_WIDGETS", raising=False)
    nb = nbformat.v4.new_notebook()
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={})
    with client.setup_kernel():
        yield Kernel(client, nb)


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    files = sorted((tmp_path / "runs").glob("sandbox/*/run.json"))
    return [json.loads(f.read_text()) for f in files]


def test_a_click_applies_exactly_the_plan_records_who_and_disables_the_buttons(
    kernel: Kernel, box: Any, tmp_path: Path
) -> None:
    params = REPO / "parameters" / "sandbox.yaml"
    assert kernel.run(SETUP.format(params=str(params))).split() == ["ApplyPanel", "1"]
    assert _records(tmp_path) == [], "nothing is recorded (or written) before the click"

    out = kernel.run(
        "panel.click_apply()\n"
        "print(panel.applied, panel.changed, panel.apply_button.disabled,"
        " panel.cancel_button.disabled)\n"
        "print(sorted((c.action, c.kind) for c in panel.changes_applied))\n"
        "print(panel.status.value)"
    )
    lines = out.splitlines()
    assert lines[0] == "True True True True"
    assert "('create', 'MseIngressConfig')" in lines[1]
    assert lines[2].startswith("✓ Applied by ")
    (record,) = _records(tmp_path)
    assert record["command"] == "notebook" and record["status"] == "ok"
    assert record["approval"]["via"] == "Apply button in JupyterLab"
    assert record["steps"][0]["applied"][0]["kind"] == "MseIngressConfig"

    # A second click does nothing: one plan, one apply.
    kernel.run("panel.click_apply()")
    assert len(_records(tmp_path)) == 1


def test_a_click_on_a_stale_plan_refuses_and_writes_nothing(
    kernel: Kernel, box: Any, tmp_path: Path
) -> None:
    from egress_lib import connect, load_parameters, steps

    params = REPO / "parameters" / "sandbox.yaml"
    kernel.run(SETUP.format(params=str(params)))
    # Someone else applies the gateway between the plan and the click.
    steps.gateway.apply(connect(load_parameters(params).model_copy(update={"approve": True})))
    rv = _config(box)["metadata"]["resourceVersion"]

    out = kernel.run("panel.click_apply()\nprint(panel.status.value)\nprint(panel.applied)")
    assert "failed: " in out and "changed" in out.lower() and out.splitlines()[-1] == "False"
    assert _config(box)["metadata"]["resourceVersion"] == rv, "the stale plan wrote"
    (record,) = _records(tmp_path)
    assert record["status"] == "failed" and "PlanStale" in record["steps"][0]["error"]


def test_cancel_changes_nothing(kernel: Kernel, box: Any, tmp_path: Path) -> None:
    kernel.run(SETUP.format(params=str(REPO / "parameters" / "sandbox.yaml")))
    out = kernel.run(
        "panel.click_cancel(); panel.click_apply()\n"
        "print(panel.applied, panel.apply_button.disabled)\nprint(panel.status.value)"
    )
    assert out.splitlines()[0] == "False True"
    assert "Cancelled by" in out and "nothing was changed" in out
    assert _config(box) is None and _records(tmp_path) == []


def test_headless_kernels_get_no_widget(box: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # nbval and plain nbclient/papermill kernels: no JPY_SESSION_NAME, so no widget state.
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("EGRESS_WIDGETS", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(SETUP.format(params=str(REPO / "parameters" / "sandbox.yaml")))
    )
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].split() == ["StepResult", "1"]
    assert "widgets" not in nb.metadata


def _config(box: Any) -> dict[str, Any] | None:
    from egress_lib import connect, load_parameters

    session = connect(load_parameters(REPO / "parameters" / "sandbox.yaml"))
    items = session.custom.list_cluster_custom_object(
        "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs"
    )["items"]
    return items[0] if items else None
