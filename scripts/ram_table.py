"""Generate the README's RAM table from ``policies/ram-policy.json``.

    python scripts/ram_table.py --check   # exit 1 when the README's table differs
    python scripts/ram_table.py --write   # rewrite the table between its markers
    python scripts/ram_table.py --print   # show the generated table

One row per step of ``policies/ram-policy.steps.json``: the RAM actions of the policy's
Statement for that step (RAM policies have no Sid element to name it by) and the step's
Kubernetes permissions. Only the lines between the README's markers are touched.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "policies" / "ram-policy.json"
STEPS = REPO / "policies" / "ram-policy.steps.json"
README = REPO / "README.md"
BEGIN = "<!-- ram-table: generated from policies/ram-policy.json by scripts/ram_table.py -->"
END = "<!-- /ram-table -->"
NONE = "\N{EN DASH}"  # the README's tables mark an empty cell so


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def render_table(policy: Any | None = None, steps: Any | None = None) -> str:
    """The Markdown table, one row per step."""
    policy = load(POLICY) if policy is None else policy
    steps = load(STEPS) if steps is None else steps
    statements = policy["Statement"]
    lines = ["| step | RAM actions | Kubernetes |", "|---|---|---|"]
    for row in steps["rows"]:
        index = row["statement"]
        actions = [] if index is None else statements[index]["Action"]
        cloud = ", ".join(f"`{a}`" for a in actions) or NONE
        if row.get("note"):
            cloud += f" {row['note']}"
        lines.append(f"| {row['step']} | {cloud} | {row['kubernetes']} |")
    return "\n".join(lines)


def replace_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if the README's table differs")
    mode.add_argument("--write", action="store_true", help="rewrite the README's table")
    mode.add_argument("--print", action="store_true", help="print the generated table")
    parser.add_argument("--readme", type=Path, default=README, help="default: README.md")
    args = parser.parse_args(argv)
    table = render_table()
    if args.print:
        print(table)
        return 0
    current = args.readme.read_text()
    try:
        wanted = replace_table(current, table)
    except ValueError as e:
        print(f"ram_table: {e}", file=sys.stderr)
        return 2
    if args.check:
        if wanted != current:
            print(f"{args.readme.name}: the RAM table differs from policies/ram-policy.json")
            print("run: python scripts/ram_table.py --write", file=sys.stderr)
            return 1
        print(f"{args.readme.name}: the RAM table matches policies/ram-policy.json")
        return 0
    if wanted != current:
        args.readme.write_text(wanted)
        print(f"wrote {args.readme.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
