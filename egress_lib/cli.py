"""``egress-runbook``: plan, run and tear down the runbook headless; list past runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from egress_lib import records, run_reports
from egress_lib.errors import EgressError, KubernetesApiError, ParameterError, Problem
from egress_lib.runner import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_APPROVED,
    EXIT_OK,
    EXIT_USAGE,
    Outcome,
    run,
)
from egress_lib.steps import FULL, POLICIES, RUNBOOK, TEARDOWN, Step, find

if TYPE_CHECKING:
    from egress_lib.parameters import Parameters

EPILOG = f"""\
exit codes:
  {EXIT_OK}    ok, or nothing to change
  {EXIT_FAILED}    a step failed (or cannot be applied: conflicts, the cluster is locked)
  {EXIT_USAGE}    bad parameters or usage; nothing was changed
  {EXIT_NOT_APPROVED}    the plan has changes that were not approved (a plan-only run)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM); the run record says where

steps: {", ".join(s.name for s in RUNBOOK)}; {POLICIES.name} when the parameters declare a
policy; teardown: {TEARDOWN.name}
"""


def _print_verify_table(out_dir: Path) -> None:
    path = out_dir / records.VERIFY_FILE
    if not path.exists():
        return
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not rows:
        return
    print()
    print(run_reports.format_verify(rows))


def _print_policy_summary(out_dir: Path) -> None:
    """Step 07's checks: how many passed, failed and were skipped, and each failure."""
    from egress_lib.steps.policy_results import POLICIES_FILE

    path = out_dir / POLICIES_FILE
    if not path.exists():
        return
    rows = json.loads(path.read_text(encoding="utf-8"))
    counts = {k: sum(1 for r in rows if r.get("outcome") == k) for k in ("pass", "fail", "skipped")}
    print(
        f"\negress policies: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['skipped']} skipped ({path})"
    )
    for r in rows:
        if r.get("outcome") == "fail":
            print(f"  FAILED {r['destination']} {r['policy']}: {r['check']}: {r['observed']}")


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in args.param or []:
        if len(item) == 1:
            key, sep, value = item[0].partition("=")
            if not sep:
                raise ParameterError(Problem("-p", "(not shown)", "-p KEY VALUE or -p KEY=VALUE"))
        elif len(item) == 2:
            key, value = item
        else:
            raise ParameterError(Problem("-p", " ".join(item), "-p KEY VALUE or -p KEY=VALUE"))
        out[key] = value
    for name, key in (
        ("context", "kube_context"),
        ("kubeconfig", "kubeconfig"),
        ("namespace", "namespace"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            out[key] = value
    return out


def _steps(args: argparse.Namespace) -> tuple[Step, ...]:
    if args.command == "teardown":
        return (TEARDOWN,)
    # 07 is among them; the runner leaves it out when no policy is declared.
    chosen: tuple[Step, ...] = FULL
    if getattr(args, "from_step", None):
        start = find(args.from_step)
        chosen = FULL[FULL.index(start) :]
    if getattr(args, "steps", None):
        wanted = {find(ref.strip()).name for ref in args.steps.split(",") if ref.strip()}
        chosen = tuple(s for s in chosen if s.name in wanted)
    return chosen


def _confirm(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _report(outcome: Outcome, command: str) -> int:
    record = outcome.record
    print()
    for s in record.steps:
        mark = {"ok": "ok", "failed": "FAILED", "planned": "planned"}.get(s.status, s.status)
        where = f"  {s.output}" if s.output else ""
        print(f"{s.step:<24} {mark:<12} {s.seconds:6.1f} s{where}")
    _print_verify_table(Path(record.out_dir))
    _print_policy_summary(Path(record.out_dir))
    if outcome.code == EXIT_OK and command != "plan" and record.status == "ok":
        print(f"\nall {len(record.steps)} steps passed; run record: {record.out_dir}")
    elif outcome.code in (EXIT_OK, EXIT_NOT_APPROVED):
        print(f"\n{outcome.message}; run record: {record.out_dir}")
    else:
        failed = record.step(record.failed_step) if record.failed_step else None
        hint = (
            f"\nsee {failed.output} (the failing cell is marked at the top)"
            if failed and failed.output
            else ""
        )
        print(f"\n{outcome.message or record.message}{hint}", file=sys.stderr)
        print(f"run record: {record.out_dir}", file=sys.stderr)
    return outcome.code


def _echo(args: argparse.Namespace) -> Callable[[str], None]:
    # With -o json, stdout carries only the JSON document; people read stderr.
    stream = sys.stderr if args.output == "json" else sys.stdout

    def echo(text: str) -> None:
        print(text, file=stream, flush=True)

    return echo


def _logging(args: argparse.Namespace) -> None:
    if args.verbose:
        logging.basicConfig(
            level=logging.INFO if args.verbose == 1 else logging.DEBUG,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )


def cmd_run(args: argparse.Namespace) -> int:
    interactive = args.command != "plan" and sys.stdin.isatty() and args.output != "json"
    _logging(args)
    try:
        outcome = run(
            Path(args.params),
            command=args.command,
            out=Path(args.out) if args.out else None,
            steps=_steps(args),
            overrides=_overrides(args),
            approve=bool(getattr(args, "approve", False)),
            confirm=_confirm if interactive else None,
            wait_lock=float(getattr(args, "wait_lock", 0) or 0),
            echo=_echo(args),
            quiet=bool(args.quiet),
        )
    except (EgressError, ValueError) as e:
        print(f"egress-runbook: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.output == "json":
        print(json.dumps(outcome.record.to_dict(), indent=2))
        return outcome.code
    return _report(outcome, args.command)


def cmd_check(args: argparse.Namespace) -> int:
    from egress_lib import references
    from egress_lib.parameters import load_parameters

    # Nothing before a valid load touches the network: a bad file is refused offline.
    try:
        params = load_parameters(Path(args.params))
    except EgressError as e:
        print(f"egress-runbook: {e}", file=sys.stderr)
        print(e.remedy, file=sys.stderr)
        return EXIT_USAGE
    refs = references.references(params)
    lines: list[str] = []
    if args.offline:
        lines.append("offline: the Services and Secrets the policies name were not checked")
    elif refs:
        code, lines = _check_references(params, args.params)
        if code != EXIT_OK:
            return code
    where = f"cluster {params.cluster_name}, target {params.target}"
    print(f"{args.params}: valid ({where}{', offline' if args.offline else ''})")
    for line in lines:
        print(f"  {line}")
    for note in params.notes:
        print(f"  note: {note}")
    return EXIT_OK


def _check_references(params: Parameters, source: str) -> tuple[int, list[str]]:
    """Read what the policies name; (exit code, lines to print). Unreachable is a note."""
    from egress_lib import references
    from egress_lib.clients import connect

    skipped = "so the Services and Secrets the policies name were not checked (--offline skips "
    try:
        session = connect(params)
    except EgressError as e:
        return EXIT_OK, [f"note: cannot reach the cluster ({e}), {skipped}this step)"]
    try:
        findings = references.check_all(session)
    except KubernetesApiError as e:
        if e.status is not None:
            print(f"egress-runbook: cannot check the references: {e}", file=sys.stderr)
            return EXIT_FAILED, []
        return EXIT_OK, [f"note: cannot reach the cluster ({e}), {skipped}this step)"]
    finally:
        session.close()
    problems = references.problems(findings)
    if problems:
        print(f"egress-runbook: {ParameterError(problems, source=source)}", file=sys.stderr)
        return EXIT_USAGE, []
    return EXIT_OK, [
        f"{'✓' if f.ok else '⚠'} {f.reference.parameter}: {f.detail}" for f in findings
    ]


def cmd_runs(args: argparse.Namespace) -> int:
    root = Path(args.out) if args.out else records.runs_root()
    try:
        if args.cluster == "show":
            if not args.run:
                print("egress-runbook: runs show RUN: name a run", file=sys.stderr)
                return EXIT_USAGE
            one = records.find_run(root, args.run)
            if args.output == "json":
                print(json.dumps(one.to_dict(), indent=2))
            else:
                print(run_reports.format_run(one))
        else:
            records.mark_killed(root, args.cluster)
            found = records.list_runs(root, args.cluster)
            if args.output == "json":
                print(json.dumps([r.to_dict() for r in found], indent=2))
            else:
                print(run_reports.format_runs(found))
    except EgressError as e:
        print(f"egress-runbook: {e}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: the run record on stdout, for scripts (what people read goes to stderr)",
    )


def _target_options(p: argparse.ArgumentParser, *, approve: bool, select: bool) -> None:
    p.add_argument("params", help="parameters file, e.g. parameters/sandbox.yaml")
    p.add_argument("--out", help="folder for run records (default: runs/)")
    _output_option(p)
    p.add_argument(
        "-q", "--quiet", action="store_true", help="one line per plan, not the objects and diffs"
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="log each API call (-vv: more)"
    )
    p.add_argument(
        "-p",
        "--param",
        action="append",
        nargs="+",
        metavar=("KEY", "VALUE"),
        help="override a parameter: -p gateway.replicas 2 or -p gateway.replicas=2",
    )
    p.add_argument("--context", help="kubeconfig context (overrides kube_context)")
    p.add_argument("--kubeconfig", help="kubeconfig file (overrides kubeconfig)")
    p.add_argument("-n", "--namespace", help="namespace (overrides namespace)")
    if select:
        p.add_argument("--from", dest="from_step", metavar="STEP", help="start at this step")
        p.add_argument("--steps", metavar="A,B", help="only these steps (names or numbers)")
    if approve:
        p.add_argument(
            "--approve",
            "--auto-approve",
            action="store_true",
            help="apply without asking (as approve: true does)",
        )
        p.add_argument(
            "--wait-lock",
            type=float,
            default=0,
            metavar="SECONDS",
            help="wait this long for another run's lock on the cluster (default: do not wait)",
        )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="egress-runbook",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument(
        "--version", action="version", version=f"egress-runbook {records.package_version()}"
    )
    sub = top.add_subparsers(dest="command", required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    def epilog(*examples: str) -> str:
        lines = "\n".join(f"  {e}" for e in examples)
        return f"examples:\n{lines}\n\n{EPILOG}"

    p_run = sub.add_parser(
        "run",
        help="plan every step, ask, then run them in order",
        description="Plan every step, show the plans, ask (on a terminal), then run the steps.",
        epilog=epilog(
            "egress-runbook run parameters/prod.yaml",
            "egress-runbook run parameters/sandbox.yaml --approve",
            "egress-runbook run parameters/prod.yaml --from 03 -p gateway.replicas 2",
        ),
        formatter_class=fmt,
    )
    _target_options(p_run, approve=True, select=True)
    p_plan = sub.add_parser(
        "plan",
        help="show every step's plan; change nothing",
        description="Show every step's plan and change nothing (exit 3 if it has changes).",
        epilog=epilog(
            "egress-runbook plan parameters/prod.yaml",
            "egress-runbook plan parameters/prod.yaml --steps 04,05 -q",
            "egress-runbook plan parameters/prod.yaml -o json | jq '.steps[].plan'",
        ),
        formatter_class=fmt,
    )
    _target_options(p_plan, approve=False, select=True)
    p_down = sub.add_parser(
        "teardown",
        help="delete what the runbook created (plan, ask, apply)",
        description="Delete what the runbook created, in reverse order, and nothing else.",
        epilog=epilog(
            "egress-runbook teardown parameters/prod.yaml",
            "egress-runbook teardown parameters/sandbox.yaml --approve",
        ),
        formatter_class=fmt,
    )
    _target_options(p_down, approve=True, select=False)
    p_check = sub.add_parser(
        "check",
        help="validate a parameters file and change nothing",
        description="Validate a parameters file, then (when the cluster can be reached) read "
        "the Services and Secrets its policies name. Exit 2 when anything is invalid or "
        "missing; an unreachable cluster is a note, not a failure.",
        epilog=epilog(
            "egress-runbook check parameters/prod.yaml",
            "egress-runbook check parameters/prod.yaml --offline",
        ),
        formatter_class=fmt,
    )
    p_check.add_argument("params")
    p_check.add_argument(
        "--offline",
        action="store_true",
        help="validate the file only; do not read the cluster",
    )
    p_runs = sub.add_parser(
        "runs",
        help="list past runs: runs [CLUSTER], or runs show RUN",
        epilog=epilog(
            "egress-runbook runs",
            "egress-runbook runs prod-hangzhou",
            "egress-runbook runs show 7a6829",
            "egress-runbook runs -o json",
        ),
        formatter_class=fmt,
    )
    _output_option(p_runs)
    p_runs.add_argument("cluster", nargs="?", help="a cluster name, or 'show'")
    p_runs.add_argument("run", nargs="?", help="with show: a run ID, a prefix of one, or a path")
    p_runs.add_argument("--out", help="folder of run records (default: runs/)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "check":
        return cmd_check(args)
    if args.command == "runs":
        return cmd_runs(args)
    try:
        return cmd_run(args)
    except KeyboardInterrupt:  # outside a run (while loading): nothing was started
        print("egress-runbook: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
