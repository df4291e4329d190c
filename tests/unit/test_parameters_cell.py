"""scripts/parameters_cell.py: the notebooks' parameters cell, generated from the schema."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
import yaml
from papermill.translators import PythonTranslator

from egress_lib.parameters import Parameters, load_parameters

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO / "parameters" / "sandbox.yaml"
PAPERMILL = Path(sys.executable).parent / "papermill"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "parameters_cell", REPO / "scripts" / "parameters_cell.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return _load()


@pytest.fixture(scope="module")
def cell(script: ModuleType) -> str:
    source = script.render_cell()
    assert isinstance(source, str)
    return source


def _assigned(cell: str) -> dict[str, object]:
    """The globals the cell leaves behind (it is plain annotated literal assignments)."""
    out: dict[str, object] = {}
    for node in ast.parse(cell).body:
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        assert node.value is not None
        out[node.target.id] = ast.literal_eval(node.value)
    return out


def _code_lines(cell: str) -> list[str]:
    return [line for line in cell.splitlines() if not line.startswith("#")]


def test_cell_starts_with_an_explanation_not_papermills_marker(cell: str) -> None:
    first = cell.splitlines()[0]
    assert first.startswith("#") and first.strip() != "# Parameters"
    head = " ".join(line for line in cell.splitlines() if line.startswith("#"))
    assert "sandbox" in head and "not injected" in head and "schema's" in head
    assert "parameters/example-ack.yaml" in head


def test_one_typed_key_per_line_in_schema_order_with_help(cell: str) -> None:
    lines = _code_lines(cell)
    assert len(lines) == len(Parameters.model_fields)
    for line, (name, field) in zip(lines, Parameters.model_fields.items(), strict=True):
        node = ast.parse(line).body[0]
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        assert node.target.id == name
        assert line.count("=") == 1, line  # papermill skips lines with two '='
        assert field.description
        assert line.endswith("# " + " ".join(field.description.split()))


def test_values_are_schema_defaults_or_the_sandbox_value(cell: str) -> None:
    ns = _assigned(cell)
    sandbox = yaml.safe_load(SANDBOX.read_text(encoding="utf-8"))
    assert ns["approve"] is False and ns["adopt"] == []
    assert ns["cluster_id"] == sandbox["cluster_id"]
    assert ns["cluster_name"] == sandbox["cluster_name"]
    assert ns["region_id"] == sandbox["region_id"]
    gateway = ns["gateway"]
    assert isinstance(gateway, dict)
    assert gateway["vswitches"] == sandbox["gateway"]["vswitches"]
    assert (
        gateway["replicas"]
        == Parameters.model_fields["gateway"]
        .annotation.model_fields[  # type: ignore[union-attr]
            "replicas"
        ]
        .default
    )
    assert ns["timeouts"] == {
        "controller_seconds": 600,
        "gateway_seconds": 900,
        "snat_seconds": 300,
        "ingress_status_seconds": 300,
        "api_retry_seconds": 120,
    }
    picked = {k: ns[k] for k in Parameters.model_fields}
    assert load_parameters(picked) == load_parameters(SANDBOX)


def test_papermill_inspect_reads_every_parameter_with_type_and_help(cell: str) -> None:
    params = PythonTranslator.inspect(nbformat.v4.new_code_cell(cell))
    assert [p.name for p in params] == list(Parameters.model_fields)
    types = {p.name: p.inferred_type_name for p in params}
    assert types["approve"] == "bool" and types["schema_version"] == "int"
    assert types["gateway"] == "dict" and types["destinations"] == "list[dict]"
    assert types["kubeconfig"] == "Optional[str]" and types["adopt"] == "list[str]"
    assert all(p.help for p in params)
    approve = next(p for p in params if p.name == "approve")
    assert approve.default == "False" and "only show the plans" in approve.help


def test_long_dict_literal_on_one_line_parses(cell: str) -> None:
    params = {p.name: p for p in PythonTranslator.inspect(nbformat.v4.new_code_cell(cell))}
    assert ast.literal_eval(params["gateway"].default)["vswitches"]
    assert len(params["destinations"].default) > 100


@pytest.mark.skipif(not PAPERMILL.exists(), reason="papermill binary missing")
def test_papermill_help_notebook_shows_types_and_help(tmp_path: Path) -> None:
    nb = tmp_path / "00-preflight.ipynb"
    shutil.copy(REPO / "notebooks" / "00-preflight.ipynb", nb)
    out = subprocess.run(
        [str(PAPERMILL), "--help-notebook", str(nb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Unknown type" not in out.stdout
    assert "Unable to parse" not in out.stderr
    assert "approve: bool (default False)" in out.stdout
    assert "gateway: dict (default {" in out.stdout
    assert "cluster_id: str (default 'c0c328057fe72d86a27cf2c550abf98ac')" in out.stdout
    for field in Parameters.model_fields.values():
        assert field.description and " ".join(field.description.split()) in out.stdout


def _copy_notebooks(tmp_path: Path) -> list[Path]:
    out = []
    for src in sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))[:2]:
        dst = tmp_path / src.name
        shutil.copy(src, dst)
        out.append(dst)
    return out


def test_check_lists_stale_notebooks_and_write_fixes_only_that_cell(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _copy_notebooks(tmp_path)
    before = b.read_bytes()
    nb = nbformat.read(a, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells[i].source = "approve = True\n"
    nbformat.write(nb, a)
    edited = nbformat.read(a, as_version=4)

    assert script.main(["--check", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert a.name in out and b.name not in out

    assert script.main(["--write", str(a), str(b)]) == 0
    assert script.main(["--check", str(a), str(b)]) == 0
    assert b.read_bytes() == before  # an up-to-date notebook is not rewritten
    fixed = nbformat.read(a, as_version=4)
    assert fixed.cells[i].source == script.render_cell()
    assert fixed.cells[i].outputs == edited.cells[i].outputs
    assert fixed.cells[i].metadata == edited.cells[i].metadata
    assert [c for j, c in enumerate(fixed.cells) if j != i] == [
        c for j, c in enumerate(edited.cells) if j != i
    ]
    assert fixed.metadata == edited.metadata


def test_write_keeps_every_other_byte(script: ModuleType, tmp_path: Path) -> None:
    (a,) = _copy_notebooks(tmp_path)[:1]
    original = a.read_text(encoding="utf-8")
    assert script.main(["--write", str(a)]) == 0
    assert a.read_text(encoding="utf-8") == original  # already generated: nothing changes


def test_a_notebook_without_a_parameters_cell_is_an_error(
    script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "00-x.ipynb"
    nbformat.write(nb, path)
    assert script.main(["--check", str(path)]) == 2
    assert "0 cells tagged 'parameters'" in capsys.readouterr().err


def test_script_runs_standalone() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "parameters_cell.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_under_papermill_only_injected_names_count(script: ModuleType, tmp_path: Path) -> None:
    """A real kernel: the generated cell, papermill's injected cell, then from_namespace."""
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell(script.render_cell())
    params_cell.metadata["tags"] = ["parameters"]
    report = (
        "from egress_lib import ParameterError, Parameters\n"
        "try:\n"
        "    p = Parameters.from_namespace(globals())\n"
        "    print('ok', p.cluster_name, p.target, p.approve, p.gateway.replicas)\n"
        "except ParameterError as e:\n"
        "    print('error', sorted(x.path for x in e.problems))\n"
    )
    nb.cells = [params_cell, nbformat.v4.new_code_cell(report)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)

    def run(parameters: dict[str, object] | None) -> str:
        out = tmp_path / "out.ipynb"
        pm.execute_notebook(
            str(src),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
        done = nbformat.read(out, as_version=4)
        return "".join(o.get("text", "") for o in done.cells[-1].outputs).strip()

    real = load_parameters(
        {
            "cluster_name": "prod",
            "target": "aliyun",
            "region_id": "cn-beijing",
            "cluster_id": "c0123456789abcdef0123456789abcdef",
            "gateway": {"vswitches": ["vsw-bp1exampleexample0001"]},
            "destinations": [{"name": "a", "host": "a.example.com", "port": 80}],
        }
    ).to_injectable()
    assert run(real) == "ok prod aliyun False 3"
    partial = {k: v for k, v in real.items() if k != "cluster_id"}
    assert run(partial) == "error ['cluster_id']"  # not the cell's sandbox cluster_id
    assert run(None) == "ok sandbox sandbox False 3"  # nothing injected: the cell's values
