"""Benchmark 7: the wall time of `make test` and of its parts, as `make test` itself records it.

``python -m benchmarks.suite_times run PART -- COMMAND...`` runs one part of `make test`, passes
its exit code on, and records its wall time in ``test-artifacts/suite-times.json``. The benchmark
reads the latest record rather than running the suite again: one `make test` takes minutes, so
five of them inside `make bench` would cost more than every other benchmark together.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import REPO, Context, Figure, now_iso

TITLE = "Test suite: `make test` and its nbval part"
RECORD = REPO / "test-artifacts" / "suite-times.json"
PARTS = ("lint", "types", "pytest", "nbval")


def load(path: Path = RECORD) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(part: str, seconds: float, code: int, path: Path = RECORD) -> None:
    data = load(path)
    if part == PARTS[0]:
        data = {}  # the first part starts a new `make test`
    data[part] = {"seconds": round(seconds, 2), "exit": code, "at": now_iso()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run(ctx: Context, path: Path = RECORD) -> list[Figure]:
    data = load(path)
    complete = all(p in data and data[p]["exit"] == 0 for p in PARTS)
    at = data.get(PARTS[-1], {}).get("at", "")
    note = (
        f"one `make test` on this machine, passed, finished {at} (recorded by `make test` itself)"
        if complete
        else "no complete, passing `make test` recorded yet (test-artifacts/suite-times.json): "
        "run `make test`, then `make bench`"
    )
    total = sum(data[p]["seconds"] for p in PARTS) if complete else float("nan")
    nbval = data["nbval"]["seconds"] if complete else float("nan")
    return [
        Figure(
            "7 test suite",
            "make test (lint, types, pytest, nbval)",
            "s",
            [total] if complete else [],
            target="<= 300 s on 2 cores",
            meets_fn=lambda s: s <= 300,
            note=note,
        ),
        Figure("7 test suite", "  its nbval part", "s", [nbval] if complete else [], note=note),
    ]


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "run" or argv[2] != "--" or argv[1] not in PARTS:
        print(f"usage: python -m benchmarks.suite_times run {{{'|'.join(PARTS)}}} -- COMMAND...")
        return 2
    start = time.perf_counter()
    try:
        code = subprocess.call(argv[3:])
    except KeyboardInterrupt:  # the child got the same Ctrl-C and has stopped
        code = 130
    record(argv[1], time.perf_counter() - start, code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
