"""``egress-sandbox``: run the sandbox (up|down|status|env|reset|serve) and drive it at run time
(fault|transition|origin|audit).

The world (Kubernetes objects, cloud resources) survives ``down``/``up`` in state.json; only
``reset`` forgets it. Faults and run-time transition modes live in memory only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from egress_sandbox.cli import control, process
from egress_sandbox.cli.parsers import sub_parser
from egress_sandbox.sandbox import default_home

DESCRIPTION = """\
Run the offline ACK + MSE + VPC/SLB/CS sandbox on loopback, and drive it while it runs.

The world (Kubernetes objects, cloud resources) survives down/up in state.json; only reset
forgets it. Faults, stuck holds and run-time transition modes live in memory only."""

EPILOG = """\
a session:
  egress-sandbox up                    start in the background; returns once it answers
  eval "$(egress-sandbox env)"         KUBECONFIG, the AccessKey and the OpenAPI endpoint
  egress-sandbox fault add --api vpc --action CreateSnatEntry --code Throttling.User --status 400
  egress-sandbox transition set --kind snat_entry --mode manual
  egress-sandbox audit --since 10m --mutating
  egress-sandbox down                  stop; the world is saved for the next up

Run `egress-sandbox COMMAND --help` for a command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="egress-sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--home",
        type=lambda s: Path(s).expanduser().resolve(),
        default=None,
        help="state folder (default: $EGRESS_SANDBOX_HOME or ~/.local/state/egress-sandbox)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    topology_help = "YAML file overriding the seeded topology (a saved world keeps its resources)"
    up = sub_parser(
        sub,
        "up",
        "start the sandbox in the background (idempotent)",
        description="Start the sandbox in the background and return once every endpoint "
        "answers.\nA saved world (state.json) is loaded; nothing happens if it already runs.",
    )
    up.add_argument("--topology", metavar="FILE", help=topology_help)
    up.set_defaults(func=process.cmd_up)
    sub_parser(sub, "down", "stop the sandbox; its world is saved to state.json").set_defaults(
        func=process.cmd_down
    )
    sub_parser(sub, "status", "say whether it runs, and where (exit 3 when stopped)").set_defaults(
        func=process.cmd_status
    )
    sub_parser(
        sub, "env", 'print shell exports for its clients: eval "$(egress-sandbox env)"'
    ).set_defaults(func=process.cmd_env)
    reset = sub_parser(
        sub, "reset", "wipe the world, audit log and faults (restarts it if it was running)"
    )
    reset.add_argument("--topology", metavar="FILE", help=topology_help)
    reset.set_defaults(func=process.cmd_reset)
    serve = sub_parser(sub, "serve", "run in the foreground until SIGTERM/Ctrl-C (what up runs)")
    serve.add_argument("--topology", metavar="FILE", help=topology_help)
    serve.set_defaults(func=process.cmd_serve)
    control.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.home is None:
        args.home = default_home()
    code: int = args.func(args)
    return code


__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
