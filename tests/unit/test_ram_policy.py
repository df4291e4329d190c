"""policies/ram-policy.json: valid RAM syntax, and exactly the RAM actions egress_lib needs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from egress_lib import ram
from egress_lib.inventory import LIST_ACTIONS

REPO = Path(__file__).resolve().parents[2]
POLICY = json.loads((REPO / "policies" / "ram-policy.json").read_text())
STEPS = json.loads((REPO / "policies" / "ram-policy.steps.json").read_text())


def policy_actions() -> set[str]:
    return {a for s in POLICY["Statement"] for a in s["Action"]}


def called_in_code() -> set[tuple[str, str]]:
    """(product, action) of every cloud.call/call_with_id with literal names, and the paged
    list actions (inventory.describe_all passes them as variables)."""
    found = {(product, action) for action, (product, *_) in LIST_ACTIONS.items()}
    for path in (REPO / "egress_lib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in ("call", "call_with_id") or len(node.args) < 2:
                continue
            product, action = node.args[0], node.args[1]
            if isinstance(product, ast.Constant) and isinstance(action, ast.Constant):
                found.add((str(product.value), str(action.value)))
    return found


def test_called_lists_every_call_site() -> None:
    assert called_in_code() == set(ram.CALLED)


def test_policy_grants_exactly_what_the_library_needs() -> None:
    granted = policy_actions()
    assert sorted(ram.required() - granted) == [], "missing from policies/ram-policy.json"
    assert sorted(granted - ram.required()) == [], "granted but never needed"


def test_ram_action_names_differ_where_the_help_pages_say() -> None:
    assert ram.ram_action("cs", "DescribeClusterAddonsVersion") == (
        "cs:Queryk8sComponentsUpdateVersion"
    )
    assert "cs:DescribeClusterAddonsVersion" not in policy_actions()
    assert ram.ram_action("vpc", "CreateSnatEntry") == "vpc:CreateSnatEntry"


def test_policy_is_plain_ram_syntax() -> None:
    # RAM's elements: Version "1" and Statement; per statement Effect, Action/NotAction,
    # Resource/NotResource, Condition. No Sid, no comments, no extension keys.
    assert set(POLICY) == {"Version", "Statement"} and POLICY["Version"] == "1"
    for statement in POLICY["Statement"]:
        assert set(statement) == {"Effect", "Action", "Resource"}
        assert statement["Effect"] == "Allow" and statement["Resource"] == "*"
        assert all(a.count(":") == 1 and "*" not in a for a in statement["Action"])
        assert len(set(statement["Action"])) == len(statement["Action"])


def test_every_statement_belongs_to_one_step() -> None:
    used = [r["statement"] for r in STEPS["rows"] if r["statement"] is not None]
    assert sorted(used) == list(range(len(POLICY["Statement"])))
    steps = [r["step"] for r in STEPS["rows"]]
    assert steps[:4] == ["00 preflight", "01 controller", "02 gateway", "03 SNAT"]
    assert "99 teardown" in steps


def test_readme_table_is_generated_from_the_policy() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "ram_table.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ram_table_check_fails_on_a_stale_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (REPO / "README.md").read_text()
    readme.write_text(text.replace("`cs:ListAddons`, ", ""))
    args = [sys.executable, str(REPO / "scripts" / "ram_table.py")]
    stale = subprocess.run([*args, "--check", "--readme", str(readme)], check=False)
    assert stale.returncode == 1
    subprocess.run([*args, "--write", "--readme", str(readme)], check=True)
    assert readme.read_text() == text
