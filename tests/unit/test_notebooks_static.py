"""The notebooks' shape: one generated parameters cell each, approve False, clean outputs."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from egress_lib import ParameterError, Parameters

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
STEPS = [
    "00-preflight",
    "01-install-controller",
    "02-create-gateway",
    "03-configure-snat",
    "04-external-services",
    "05-ingress-routes",
    "06-verify",
    "07-egress-policies",
]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "parameters_cell", REPO / "scripts" / "parameters_cell.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parameters_cell(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    return str(tagged[0].source)


def _assigned(source: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.AnnAssign), ast.unparse(node)
        assert isinstance(node.target, ast.Name) and node.value is not None
        out[node.target.id] = ast.literal_eval(node.value)
    return out


def test_there_is_a_notebook_per_step_plus_teardown() -> None:
    stems = [p.stem for p in NOTEBOOKS]
    assert stems[:-1] == STEPS
    assert stems[-1].endswith("-teardown")  # 07- today, 99- once renamed


def test_parameters_cells_are_the_generated_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert _script().main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_one_typed_key_per_line_and_never_approves(path: Path) -> None:
    values = _assigned(_parameters_cell(path))
    assert list(values) == list(Parameters.model_fields)
    assert values["approve"] is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_cell_interactively_gives_valid_sandbox_parameters(path: Path) -> None:
    src = _parameters_cell(path)
    ns = _assigned(src)  # the globals the cell leaves behind when it runs in JupyterLab
    ns["In"] = ["", src]
    p = Parameters.from_namespace(ns)
    assert p.target == "sandbox" and p.approve is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_carry_no_errors(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []
    executed = [c.execution_count is not None for c in nb.cells if c.cell_type == "code"]
    assert all(executed), "stored outputs are stale: run `make notebooks`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_parameters_cell_is_followed_by_from_namespace(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert "Parameters.from_namespace(globals())" in nb.cells[i + 1].source


def test_an_injected_key_the_schema_does_not_know_is_named() -> None:
    ns = _assigned(_parameters_cell(NOTEBOOKS[0]))
    ns["gatway"] = {}
    ns["In"] = ["", "# Parameters\ncluster_name = 'prod'\ngatway = {}\n"]
    with pytest.raises(ParameterError) as err:
        Parameters.from_namespace(ns)
    assert "gatway" in str(err.value) and "did you mean 'gateway'" in str(err.value)


def _outputs_text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        str(o.get("text", "")) + "".join(str(v) for v in (o.get("data") or {}).values())
        for o in cell.get("outputs", [])
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_only_for_the_regression_test_are_collapsed_in_lab(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "nbval-only" in cell.metadata.get("tags", []):
            assert cell.metadata.get("jupyter") == {"source_hidden": True, "outputs_hidden": True}


def test_the_verify_columns_cell_is_tagged_nbval_only() -> None:
    nb = nbformat.read(REPO / "notebooks" / "06-verify.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if ".select(" in c.source]
    assert "nbval-only" in cell.metadata["tags"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_tables_are_the_runbooks_not_pandas_frames(path: Path) -> None:
    # pandas frames right-align, show the 0..N index and cut long text with "...".
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        assert 'class="dataframe"' not in _outputs_text(cell), cell.source


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("00-preflight", "RBAC services"),  # the checks
        ("03-configure-snat", "SnatEntryId"),  # the SNAT table (plan-only: the one before)
        ("02-create-gateway", "SlbId"),  # the CLB table (as MSE ListGatewaySlb reports it)
    ],
)
def test_each_table_is_shown_once(name: str, marker: str) -> None:
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    showing = [c.source for c in nb.cells if marker in _outputs_text(c)]
    assert len(showing) == 1, showing
