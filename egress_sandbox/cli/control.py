"""``egress-sandbox fault|transition|origin|audit``: drive a running sandbox through its control
endpoint.

Faults, stuck holds, run-time transition modes and downed public hosts live in the sandbox's
memory only: they are never saved to state.json, and ``down``/``up`` or ``reset`` clears them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress_sandbox.cli.parsers import sub_parser
from egress_sandbox.control.actions import APIS, MODES, normalize_since
from egress_sandbox.control.client import ControlClient, ControlError
from egress_sandbox.core.audit import AuditLog
from egress_sandbox.core.faults import RESETS
from egress_sandbox.core.stuck import KINDS

MEMORY_ONLY = "Faults live in the running sandbox's memory only: never saved, gone after down/up."
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
AUDIT_COLUMNS = (
    "time",
    "principal",
    "api",
    "action",
    "path",
    "mutating",
    "status",
    "request_id",
    "error_code",
)


def parse_since(text: str, now: dt.datetime | None = None) -> str:
    """``10m``/``30s``/``2h``/``1d`` ago, or an ISO time, as a UTC ISO string."""
    m = _RELATIVE.match(text.strip())
    if m:
        now = now or dt.datetime.now(dt.timezone.utc)
        return normalize_since((now - dt.timedelta(seconds=float(m[1]) * _UNIT[m[2]])).isoformat())
    return normalize_since(text)


def _client(args: argparse.Namespace) -> ControlClient:
    return ControlClient.from_home(args.home)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


# ---- fault -----------------------------------------------------------------------------------


def cmd_fault_add(args: argparse.Namespace) -> int:
    fault = _client(args).add_fault(
        api=args.api,
        action=args.action,
        resource=args.resource,
        code=args.code,
        status=args.status,
        count=args.count,
        message=args.message,
        retry_after_ms=args.retry_after_ms,
        latency_ms=args.latency_ms,
        reset=args.reset,
        skip_dry_runs=args.skip_dry_runs,
    )
    target = f"{fault['verb']} {fault['resource']}" if args.api == "k8s" else fault["action"]
    what = f"{fault.get('code') or fault.get('reason')} ({fault['status']})"
    if fault.get("reset"):
        what = (
            f"connection reset {fault['reset']} the {'request' if args.api == 'k8s' else 'action'}"
        )
    elif not (fault.get("code") or fault.get("reason")):
        what = f"+{fault['latency_ms']} ms"
    elif fault["latency_ms"]:
        what += f" after {fault['latency_ms']} ms"
    print(f"fault added: next {fault['count']} {args.api} {target} call(s) -> {what}")
    return 0


def cmd_fault_list(args: argparse.Namespace) -> int:
    faults = _client(args).faults()
    if args.json:
        _print_json(faults)
        return 0
    rows = [{"api": f["api"], "target": f["action"], **f} for f in faults["cloud"]]
    rows += [
        {"api": "k8s", "target": f"{f['verb']} {f['resource']}", "code": f["reason"], **f}
        for f in faults["k8s"]
    ]
    if rows:
        print_table(
            rows,
            (
                "api",
                "target",
                "code",
                "status",
                "count",
                "latency_ms",
                "retry_after_ms",
                "reset",
                "message",
            ),
        )
    for hold in faults["stuck"]:
        print(f"stuck: {hold['kind']} {hold['id']} ({hold['parked_steps']} step(s) held)")
    if not rows and not faults["stuck"]:
        print("no faults")
    return 0


def cmd_fault_clear(args: argparse.Namespace) -> int:
    cleared = _client(args).clear_faults()["cleared"]
    print(
        f"cleared {cleared['cloud']} cloud and {cleared['k8s']} k8s fault(s), "
        f"{cleared['stuck']} stuck hold(s); {cleared['released_steps']} held step(s) resumed"
    )
    return 0


def cmd_fault_stuck(args: argparse.Namespace) -> int:
    _client(args).stuck(args.kind, args.id)
    print(f"{args.kind} {args.id} is stuck in its current state until `fault clear`")
    return 0


def cmd_fault_mse_fail(args: argparse.Namespace) -> int:
    _client(args).mse_fail(args.name, args.message)
    print(f"MseIngressConfig {args.name} is Failed: {args.message}")
    return 0


def cmd_fault_drop_watches(args: argparse.Namespace) -> int:
    n = _client(args).drop_watches(args.resource)
    print(f"dropped {n} watch stream(s)")
    return 0


def cmd_fault_reset(args: argparse.Namespace) -> int:
    _client(args).reset()
    print("faults and stuck holds cleared; transition modes back to the topology's")
    return 0


# ---- transition ------------------------------------------------------------------------------


def cmd_transition_set(args: argparse.Namespace) -> int:
    client = _client(args)
    client.set_transition(args.kind, args.mode, args.seconds)
    now = client.transitions()[args.kind]
    seconds = f" {now['seconds']} s" if now["mode"] == "timed" else ""
    print(f"{args.kind}: {now['mode']}{seconds} (applies to transitions that start from now)")
    return 0


def cmd_transition_advance(args: argparse.Namespace) -> int:
    _client(args).advance(args.id)
    print(f"advanced {args.id} one step")
    return 0


def cmd_transition_list(args: argparse.Namespace) -> int:
    current = _client(args).transitions()
    print_table([{"kind": k, **v} for k, v in current.items()], ("kind", "mode", "seconds"))
    return 0


# ---- origin ----------------------------------------------------------------------------------


def cmd_origin_set(args: argparse.Namespace) -> int:
    client = _client(args)
    rule = client.origin_down(args.host) if args.state == "down" else client.origin_up(args.host)
    what = "down: connections to it are refused" if rule["down"] else "up"
    print(f"{rule['host']} is {what}")
    return 0


def cmd_origin_list(args: argparse.Namespace) -> int:
    hosts = _client(args).origin_hosts()
    if args.json:
        _print_json(hosts)
    elif hosts:
        print_table(hosts, ("host", "down", "require_sni", "require_client_certificate"))
    else:
        print("no host has rules: every public host is a plain echo")
    return 0


# ---- audit -----------------------------------------------------------------------------------


def _audit_offline(home: Path, since: str | None, mutating: bool | None) -> list[dict[str, Any]]:
    """The stopped sandbox's audit.jsonl, filtered the way the endpoint filters."""
    from dataclasses import asdict

    log = AuditLog(home / "audit.jsonl")
    log.load()
    return [asdict(r) for r in log.records(since=since, mutating=mutating)]


def cmd_audit(args: argparse.Namespace) -> int:
    since = parse_since(args.since) if args.since else None
    mutating = True if args.mutating else None
    try:
        records = _client(args).audit(since=since, mutating=mutating, api=args.api)
    except ControlError as exc:
        if exc.status is not None:
            raise
        records = _audit_offline(args.home, since, mutating)  # not running: read the file
        records = [r for r in records if args.api is None or r["api"] == args.api]
    if args.json:
        for r in records:
            print(json.dumps(r))
    elif records:
        print_table(records, AUDIT_COLUMNS)
    else:
        print("no audit records")
    return 0


# ---- parser ----------------------------------------------------------------------------------


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except ControlError as exc:
            print(f"egress-sandbox: {exc}", file=sys.stderr)
            return 3 if exc.status is None else 1

    return run


FAULT_EPILOG = """\
examples:
  egress-sandbox fault add --api vpc --action CreateSnatEntry --code Throttling.User --status 400
  egress-sandbox fault add --api k8s --action create --resource services \\
      --code TooManyRequests --status 429 --count 2 --retry-after-ms 1000
  egress-sandbox fault add --api cs --action '*' --latency-ms 2000
  egress-sandbox fault add --api vpc --action CreateSnatEntry --reset after
  egress-sandbox fault add --api vpc --action CreateSnatEntry --code ServiceUnavailable \\
      --status 503 --count 1000000    # "for good": until fault clear
  egress-sandbox fault add --api k8s --action create --resource pods --reset before \\
      --skip-dry-runs
  egress-sandbox fault stuck --kind snat_entry --id '*'
  egress-sandbox fault list
  egress-sandbox fault clear"""

TRANSITION_EPILOG = """\
kinds: snat_entry (Pending -> Available), nat_gateway, addon_install (CS task),
mse_gateway (MseIngressConfig phases). Modes: immediate, timed (--seconds), manual (advance).

examples:
  egress-sandbox transition set --kind snat_entry --mode manual
  egress-sandbox transition advance --id snat-...
  egress-sandbox transition set --kind mse_gateway --mode timed --seconds 5"""

ORIGIN_EPILOG = """\
The origin plays every public host. A host taken down refuses connections (the gateway answers
503, or retries where its policy says so) until it is brought up, `fault reset` or down/up.

examples:
  egress-sandbox origin down api.maps-backup.example
  egress-sandbox origin list
  egress-sandbox origin up api.maps-backup.example"""

AUDIT_EPILOG = """\
Reads the running sandbox, or the audit.jsonl of a stopped one. MUTATING marks write requests
(also refused ones); dry runs and access reviews change nothing and are not marked.

examples:
  egress-sandbox audit --since 10m --mutating
  egress-sandbox audit --api k8s --json"""


def _add_fault_parsers(sub: Any) -> None:
    fault = sub_parser(
        sub,
        "fault",
        "inject failures, slowness and stuck resources (in memory only)",
        description=MEMORY_ONLY,
        epilog=FAULT_EPILOG,
    )
    fsub = fault.add_subparsers(dest="fault_command", required=True, metavar="SUBCOMMAND")
    add = sub_parser(
        fsub,
        "add",
        "fail (or slow down) the next N calls of an action / k8s verb",
        description="Fail (or slow down) the next N matching calls. " + MEMORY_ONLY,
        epilog=FAULT_EPILOG,
    )
    add.add_argument("--api", required=True, choices=APIS, help="which API the fault is on")
    add.add_argument(
        "--action", required=True, help="OpenAPI action (e.g. CreateSnatEntry) or k8s verb, or *"
    )
    add.add_argument("--resource", help="k8s resource plural (e.g. services); default: any")
    add.add_argument("--code", default="", help="error Code (cloud) or Status reason (k8s)")
    add.add_argument("--status", type=int, default=0, help="HTTP status, 400..599 (with --code)")
    add.add_argument("--count", type=int, default=1, help="how many calls fail (default 1)")
    add.add_argument("--message", default="", help="error message")
    add.add_argument(
        "--retry-after-ms", type=int, help="Retry-After to send (SDK: ThrottlingException)"
    )
    add.add_argument("--latency-ms", type=int, default=0, help="delay before answering")
    add.add_argument(
        "--reset",
        choices=RESETS,
        default="",
        help="close the connection without an answer, before or after the action took effect",
    )
    add.add_argument(
        "--skip-dry-runs",
        action="store_true",
        help="k8s: let server-side dry runs through, so the fault hits the real write",
    )
    add.set_defaults(func=_guard(cmd_fault_add))
    lst = sub_parser(fsub, "list", "pending faults and stuck holds")
    lst.add_argument("--json", action="store_true", help="JSON instead of a table")
    lst.set_defaults(func=_guard(cmd_fault_list))
    clear = sub_parser(fsub, "clear", "remove every fault and hold (held resources move on)")
    clear.set_defaults(func=_guard(cmd_fault_clear))
    stuck = sub_parser(fsub, "stuck", "keep a resource in its current state until fault clear")
    stuck.add_argument("--kind", required=True, choices=KINDS, help="what kind of resource")
    stuck.add_argument(
        "--id", required=True, help="snat-…, ngw-…, task T-…, MseIngressConfig name, or *"
    )
    stuck.set_defaults(func=_guard(cmd_fault_stuck))
    fail = sub_parser(fsub, "mse-fail", "put a MseIngressConfig into phase Failed")
    fail.add_argument("--name", required=True, help="the MseIngressConfig")
    fail.add_argument("--message", required=True, help="its status.message")
    fail.set_defaults(func=_guard(cmd_fault_mse_fail))
    drop = sub_parser(fsub, "drop-watches", "end open watch streams (clients must re-watch)")
    drop.add_argument("--resource", help="only watches of this resource plural")
    drop.set_defaults(func=_guard(cmd_fault_drop_watches))
    reset = sub_parser(fsub, "reset", "clear faults and holds; transition modes as at start")
    reset.set_defaults(func=_guard(cmd_fault_reset))


def _add_transition_parsers(sub: Any) -> None:
    trans = sub_parser(
        sub,
        "transition",
        "how resources move between states, changed at run time (in memory only)",
        epilog=TRANSITION_EPILOG,
    )
    tsub = trans.add_subparsers(dest="transition_command", required=True, metavar="SUBCOMMAND")
    tset = sub_parser(
        tsub,
        "set",
        "change a kind's mode for transitions that start from now",
        epilog=TRANSITION_EPILOG,
    )
    tset.add_argument("--kind", required=True, choices=KINDS, help="what kind of resource")
    tset.add_argument("--mode", required=True, choices=MODES, help="how it moves on")
    tset.add_argument("--seconds", type=float, help="delay of mode timed")
    tset.set_defaults(func=_guard(cmd_transition_set))
    adv = sub_parser(tsub, "advance", "run the waiting step of a manual transition")
    adv.add_argument("--id", required=True, help="SNAT entry id, CS task id or config name")
    adv.set_defaults(func=_guard(cmd_transition_advance))
    tlist = sub_parser(tsub, "list", "the current mode of each kind")
    tlist.set_defaults(func=_guard(cmd_transition_list))


def _add_origin_parsers(sub: Any) -> None:
    origin = sub_parser(
        sub,
        "origin",
        "take public hosts of the sandbox's internet down or up (in memory only)",
        epilog=ORIGIN_EPILOG,
    )
    osub = origin.add_subparsers(dest="origin_command", required=True, metavar="SUBCOMMAND")
    for state, help_text in (
        ("down", "refuse connections to a public host"),
        ("up", "let a downed host answer again"),
    ):
        cmd = sub_parser(osub, state, help_text, epilog=ORIGIN_EPILOG)
        cmd.add_argument("host", help="the public host name, e.g. api.maps-backup.example")
        cmd.set_defaults(func=_guard(cmd_origin_set), state=state)
    olist = sub_parser(osub, "list", "hosts with rules (topology) or a run-time state")
    olist.add_argument("--json", action="store_true", help="JSON instead of a table")
    olist.set_defaults(func=_guard(cmd_origin_list))


def add_parsers(sub: Any) -> None:
    """Add ``fault``, ``transition``, ``origin`` and ``audit`` to the top-level subparsers."""
    _add_fault_parsers(sub)
    _add_transition_parsers(sub)
    _add_origin_parsers(sub)
    audit = sub_parser(sub, "audit", "every API request the sandbox answered", epilog=AUDIT_EPILOG)
    audit.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    audit.add_argument("--since", help="ISO time, or relative: 30s, 10m, 2h, 1d")
    audit.add_argument(
        "--mutating", action="store_true", help="only write requests (no reads, dry runs, reviews)"
    )
    audit.add_argument("--api", choices=(*APIS, "control"), help="only this API")
    audit.set_defaults(func=_guard(cmd_audit))
