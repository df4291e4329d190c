"""The notebooks' shape: one parameters cell each, defaults equal to parameters/sandbox.yaml."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from egress_lib import ParameterError, Parameters

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
SANDBOX = yaml.safe_load((REPO / "parameters" / "sandbox.yaml").read_text())


def test_there_is_a_notebook_per_step_plus_preflight_verify_and_teardown() -> None:
    assert [p.stem for p in NOTEBOOKS] == [
        "00-preflight",
        "01-install-controller",
        "02-create-gateway",
        "03-configure-snat",
        "04-external-services",
        "05-ingress-routes",
        "06-verify",
        "07-teardown",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_parameters_cell_whose_defaults_are_the_sandbox_parameters(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    # The cell is plain `key = literal` lines, as papermill's own injected cell is.
    ns = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert ns == SANDBOX


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_carry_no_errors(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    executed = [c.execution_count is not None for c in nb.cells if c.cell_type == "code"]
    assert all(executed), "stored outputs are stale: run `make notebooks`"


def test_an_injected_key_the_schema_does_not_know_is_named() -> None:
    ns: dict[str, object] = dict(SANDBOX)
    ns["gatway"] = {}
    ns["In"] = ["", "# Parameters\ncluster_name = 'prod'\ngatway = {}\n"]
    with pytest.raises(ParameterError) as err:
        Parameters.from_namespace(ns)
    assert "gatway" in str(err.value) and "did you mean 'gateway'" in str(err.value)
