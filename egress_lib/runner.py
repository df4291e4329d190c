"""Run the runbook's notebooks in order with papermill, one output folder per run.

Each run writes ``runs/<cluster_name>/<UTC time>/``: the executed notebooks (the run log, with
the parameters papermill injected) and ``run.json`` (what ran, how long, and how it ended).
The first failing step stops the run and is named.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from egress_lib.clients import read_sandbox_info
from egress_lib.parameters import Parameters, load_parameters
from egress_lib.steps.verify import RUN_DIR_ENV

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"

# The documented procedure, in order. Teardown is never part of a run.
STEPS: tuple[str, ...] = (
    "00-preflight",
    "01-install-controller",
    "02-create-gateway",
    "03-configure-snat",
    "04-external-services",
    "05-ingress-routes",
    "06-verify",
)


@dataclass
class StepRecord:
    step: str
    status: str  # ok | failed | skipped
    seconds: float
    output: str
    error: str = ""


@dataclass
class RunRecord:
    cluster_name: str
    parameters_file: str
    started: str
    out_dir: str
    status: str = "running"
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def write(self) -> None:
        path = Path(self.out_dir) / "run.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def raw_parameters(path: Path) -> dict[str, Any]:
    """The YAML mapping papermill injects: validated first, so a bad file changes nothing."""
    load_parameters(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    assert isinstance(data, dict)
    return data


def run(
    params_file: Path,
    *,
    out: Path | None = None,
    steps: Sequence[str] = STEPS,
    notebooks_dir: Path = NOTEBOOKS_DIR,
    overrides: dict[str, Any] | None = None,
) -> RunRecord:
    """Run ``steps`` against the cluster ``params_file`` describes; stop at the first failure."""
    import papermill as pm

    params: Parameters = load_parameters(params_file, overrides)
    if params.target == "sandbox":
        read_sandbox_info()  # a stopped sandbox is named now, not inside the first notebook
    injected = raw_parameters(params_file) | (overrides or {})
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir = (out or Path("runs")) / params.cluster_name / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(params.cluster_name, str(params_file), stamp, str(out_dir))
    env_before = os.environ.get(RUN_DIR_ENV)
    # The kernel inherits this; steps leave machine-readable results there (verify.json).
    os.environ[RUN_DIR_ENV] = str(out_dir.resolve())
    try:
        for step in steps:
            src = notebooks_dir / f"{step}.ipynb"
            dst = out_dir / f"{step}.ipynb"
            t0 = time.monotonic()
            try:
                pm.execute_notebook(
                    str(src),
                    str(dst),
                    parameters=injected,
                    cwd=str(notebooks_dir),
                    kernel_name="python3",
                    progress_bar=False,
                    log_output=False,
                    # ipykernel logs to our stderr: that its local TCP ports are unencrypted,
                    # and "KeyboardInterrupt caught" when papermill shuts it down. Cell
                    # errors still reach the notebook and the run record.
                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                )
            except pm.PapermillExecutionError as e:
                record.steps.append(
                    StepRecord(
                        step, "failed", time.monotonic() - t0, str(dst), f"{e.ename}: {e.evalue}"
                    )
                )
                record.status = "failed"
                break
            record.steps.append(StepRecord(step, "ok", time.monotonic() - t0, str(dst)))
        else:
            record.status = "ok"
    finally:
        if env_before is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = env_before
        record.write()
    return record
