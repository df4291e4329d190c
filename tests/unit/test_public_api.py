"""The package's public surface: what ``__all__`` promises, and that it all resolves."""

from __future__ import annotations

import importlib
import types

import egress_lib
from egress_lib import steps

EXPORTED = [
    "Change",
    "Check",
    "ClbAddress",
    "CloudApiError",
    "CloudConnectionError",
    "Destination",
    "EgressError",
    "Facts",
    "KubernetesApiError",
    "LockHeld",
    "NotApproved",
    "ParameterError",
    "Parameters",
    "Plan",
    "PlanConflict",
    "PlanStale",
    "PreconditionFailed",
    "Problem",
    "Session",
    "StepFailed",
    "StepResult",
    "TargetUnavailable",
    "VerifyResult",
    "WaitTimeout",
    "connect",
    "load_parameters",
    "manifests",
    "notebook",
    "steps",
    "yaml_block",
]


def test_exported_members() -> None:
    assert egress_lib.__all__ == EXPORTED
    assert sorted(EXPORTED) == EXPORTED
    for name in egress_lib.__all__:
        assert hasattr(egress_lib, name), name


def test_public_classes_and_functions_say_where_they_live() -> None:
    # Every exported class/function is defined inside egress_lib (no third-party re-export).
    for name in egress_lib.__all__:
        member = getattr(egress_lib, name)
        if isinstance(member, types.ModuleType):
            assert member.__name__.startswith("egress_lib."), name
        else:
            assert member.__module__.startswith("egress_lib."), name


def test_steps_expose_plan_and_apply() -> None:
    assert steps.__all__ == sorted(steps.__all__)
    assert [s.module for s in steps.RUNBOOK] == list(steps.ORDER)
    assert [s.name for s in steps.RUNBOOK] == [m.STEP for m in steps.ORDER]
    for module in steps.ORDER:
        assert callable(module.plan) and callable(module.apply), module.__name__
    assert callable(steps.teardown.plan) and callable(steps.teardown.apply)


def test_names_the_notebooks_call_exist() -> None:
    # Notebooks call these by name; renaming one breaks a stored notebook.
    names = {
        "egress_lib": ["Parameters", "connect", "notebook", "steps", "yaml_block"],
        "egress_lib.notebook": ["apply", "verify"],
        "egress_lib.steps.preflight": [
            "facts",
            "checks",
            "checks_table",
            "checks_frame",
            "plan",
            "apply",
        ],
        "egress_lib.steps.controller": ["addon_table", "cluster_objects", "plan", "apply"],
        "egress_lib.steps.gateway": ["clb_table", "clb_frame", "plan", "apply"],
        "egress_lib.steps.snat": ["snat_table", "snat_frame", "plan", "apply"],
        "egress_lib.steps.ingress": ["wait_for_clb_address", "address_frame", "plan", "apply"],
        "egress_lib.steps.verify": ["plan", "run", "apply"],
    }
    for module_name, attrs in names.items():
        module = importlib.import_module(module_name)
        for attr in attrs:
            assert hasattr(module, attr), f"{module_name}.{attr}"
    assert callable(egress_lib.Parameters.from_namespace)
    for method in ("save", "to_frame", "to_table", "raise_for_failures"):
        assert callable(getattr(egress_lib.VerifyResult, method))
    assert callable(egress_lib.Facts.to_tables) and callable(egress_lib.StepResult.table)
