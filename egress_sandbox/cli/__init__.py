"""``egress-sandbox``: run the sandbox (up|down|status|env|reset|serve) and drive it at run time
(fault|transition|audit).

The world (Kubernetes objects, cloud resources) survives ``down``/``up`` in state.json; only
``reset`` forgets it. Faults and run-time transition modes live in memory only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from egress_sandbox.cli import control, process
from egress_sandbox.sandbox import default_home


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egress-sandbox", description=__doc__)
    parser.add_argument(
        "--home",
        type=lambda s: Path(s).expanduser().resolve(),
        default=None,
        help="state folder (default: $EGRESS_SANDBOX_HOME or ~/.local/state/egress-sandbox)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the sandbox in the background (idempotent)")
    up.add_argument("--topology", help="YAML file overriding the seeded topology")
    up.set_defaults(func=process.cmd_up)
    sub.add_parser("down", help="stop the sandbox; its world is saved to state.json").set_defaults(
        func=process.cmd_down
    )
    sub.add_parser("status", help="say whether it runs, and where").set_defaults(
        func=process.cmd_status
    )
    sub.add_parser("env", help='print shell exports: eval "$(egress-sandbox env)"').set_defaults(
        func=process.cmd_env
    )
    reset = sub.add_parser(
        "reset", help="wipe the world, audit log and faults (restarts it if it was running)"
    )
    reset.add_argument("--topology", help="YAML file overriding the seeded topology")
    reset.set_defaults(func=process.cmd_reset)
    serve = sub.add_parser("serve", help="run in the foreground")
    serve.add_argument("--topology", help="YAML file overriding the seeded topology")
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
