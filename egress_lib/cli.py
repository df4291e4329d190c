"""``egress-runbook``: run the runbook headless, or check a parameters file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from egress_lib.errors import EgressError
from egress_lib.runner import STEPS, run


def _print_verify_table(out_dir: Path) -> None:
    path = out_dir / "verify.json"
    if not path.exists():
        return
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not rows:
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print()
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


def cmd_run(args: argparse.Namespace) -> int:
    try:
        record = run(Path(args.params), out=Path(args.out) if args.out else None)
    except EgressError as e:
        print(f"egress-runbook: {e}", file=sys.stderr)
        return 2
    for s in record.steps:
        mark = "ok" if s.status == "ok" else "FAILED"
        print(f"{s.step:<24} {mark:<7} {s.seconds:6.1f} s  {s.output}")
    _print_verify_table(Path(record.out_dir))
    failed = record.failed_step
    if failed:
        print(
            f"\nstep {failed.step} failed: {failed.error}\n"
            f"see {failed.output} (the failing cell is marked at the top)",
            file=sys.stderr,
        )
        return 1
    print(f"\nall {len(record.steps)} steps passed; run record: {record.out_dir}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from egress_lib.parameters import load_parameters

    try:
        params = load_parameters(Path(args.params))
    except EgressError as e:
        print(f"egress-runbook: {e}", file=sys.stderr)
        return 2
    print(f"{args.params}: valid (cluster {params.cluster_name}, target {params.target})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="egress-runbook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help=f"run the steps in order: {', '.join(STEPS)}")
    p_run.add_argument("params", help="parameters file, e.g. parameters/sandbox.yaml")
    p_run.add_argument("--out", help="folder for run records (default: runs/)")
    p_check = sub.add_parser("check", help="validate a parameters file and change nothing")
    p_check.add_argument("params")
    args = parser.parse_args(argv)
    return cmd_run(args) if args.command == "run" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
