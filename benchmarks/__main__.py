"""`make bench`: run every benchmark against fresh sandboxes, print one table, write BENCHMARKS.md.

python -m benchmarks                 # every benchmark, 5 repetitions, writes BENCHMARKS.md
python -m benchmarks --smoke         # each at its smallest size, once (what make test runs)
python -m benchmarks --only scale,throughput --repeats 7
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import tempfile
import traceback
from pathlib import Path
from types import ModuleType

from benchmarks.harness import REPO, Context, Figure, Timer, machine, now_iso
from benchmarks.report import render_markdown, render_table

# (module, block): each benchmark starts its sandboxes on a 127.N.0.0/16 block of its own
# (tests/conftest.py lists them); the smoke test adds SMOKE_OFFSET, so that `make test` and
# `make bench` can run side by side. Benchmark 6 (memory) is measured inside 3 (scale), during
# its largest apply.
BENCHMARKS: list[tuple[str, int]] = [
    ("full_run", 60),
    ("wait_reaction", 61),
    ("scale", 62),
    ("throughput", 63),
    ("dataplane", 64),
    ("suite_times", 65),
]
SMOKE_OFFSET = 10
MIN_REPEATS = 5


def load(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def run_one(name: str, block: int, smoke: bool, repeats: int, workdir: Path) -> list[Figure]:
    mod = load(name)
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    ctx = Context(smoke=smoke, repeats=1 if smoke else repeats, workdir=folder, block=block)
    figures: list[Figure] = mod.run(ctx)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="smallest size, one repetition")
    ap.add_argument("--only", default="", help="comma-separated benchmark modules")
    ap.add_argument("--repeats", type=int, default=MIN_REPEATS)
    ap.add_argument(
        "--out", type=Path, default=None, help="default: BENCHMARKS.md (not with --smoke)"
    )
    ap.add_argument("--json", type=Path, default=REPO / "test-artifacts" / "bench" / "results.json")
    args = ap.parse_args(argv)
    if not args.smoke and args.repeats < MIN_REPEATS:
        ap.error(f"--repeats {args.repeats}: each figure is the median of at least {MIN_REPEATS}")
    names = [n for n, _ in BENCHMARKS]
    only = [n.strip() for n in args.only.split(",") if n.strip()] or names
    unknown = [n for n in only if n not in names]
    if unknown:
        ap.error(f"--only {','.join(unknown)}: expected some of {', '.join(names)}")
    out = args.out if args.out is not None else (None if args.smoke else REPO / "BENCHMARKS.md")
    command = "python -m benchmarks " + shlex.join(argv if argv is not None else sys.argv[1:])
    started = now_iso()
    figures: list[Figure] = []
    failed: list[str] = []
    titles: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as tmp:
        for name, block in BENCHMARKS:
            if name not in only:
                continue
            titles[name] = str(getattr(load(name), "TITLE", name))
            print(f"== {name}: {titles[name]}", flush=True)
            with Timer() as t:
                try:
                    got = run_one(
                        name,
                        block + (SMOKE_OFFSET if args.smoke else 0),
                        args.smoke,
                        args.repeats,
                        Path(tmp),
                    )
                except Exception:  # noqa: BLE001 -- one broken benchmark must not hide the others' figures
                    traceback.print_exc()
                    failed.append(name)
                    continue
            figures += got
            print(render_table(got), flush=True)
            print(f"   ({t.seconds:.0f} s)", flush=True)
    info = machine()
    print()
    print(render_table(figures))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "started": started,
                "finished": now_iso(),
                "command": command,
                "machine": info,
                "failed": failed,
                "figures": [f.to_json() for f in figures],
            },
            indent=2,
        )
        + "\n"
    )
    if out is not None:
        out.write_text(render_markdown(figures, info, started, command, titles, failed))
        print(f"\nwritten to {out}")
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
