"""What every benchmark shares: repeated samples, their median, the machine, the table.

A benchmark is a function ``run(ctx) -> list[Figure]``. Each figure is measured ``ctx.repeats``
times (at least 5 under ``make bench``, once in the smoke test) and reported as its median with
the minimum and maximum. Ratios are figures of their own, computed per repetition from two
measurements taken side by side in the same repetition.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Figure:
    """One measured quantity: its samples, and the target it is held to (if any)."""

    benchmark: str  # "3 scale"
    name: str  # "apply N=100: egress_lib"
    unit: str  # "s", "ms", "req", "req/s", "MiB", "x"
    samples: list[float] = field(default_factory=list)
    target: str = ""  # "<= 0.5", as the issue words it
    # Whether the median meets the target: a function of the median, so it is judged once.
    meets_fn: Callable[[float], bool] | None = None
    note: str = ""  # why a target is missed, or what the figure means

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def meets(self) -> bool | None:
        if self.meets_fn is None or not self.samples:
            return None
        return self.meets_fn(self.median)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "name": self.name,
            "unit": self.unit,
            "samples": self.samples,
            "median": self.median,
            "min": min(self.samples) if self.samples else None,
            "max": max(self.samples) if self.samples else None,
            "target": self.target,
            "meets": self.meets,
            "note": self.note,
        }


@dataclass
class Context:
    """Where and how hard a benchmark runs."""

    smoke: bool  # the smallest size, once: what `make test` runs
    repeats: int
    workdir: Path  # a fresh folder for this benchmark's homes and files
    block: int  # this benchmark's 127.<block>.0.0/16 (a sandbox needs its own)

    def sizes(self, full: list[int], smallest: int | None = None) -> list[int]:
        """The sizes to measure: all of ``full``, or just the smallest in the smoke test."""
        return [smallest if smallest is not None else full[0]] if self.smoke else full


def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit in ("req", "writes", "n"):
        return f"{value:.0f}"
    if unit in ("req/s",):
        return f"{value:,.0f}"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "ms":
        return f"{value:.1f}"
    if unit == "MiB":
        return f"{value:.0f}"
    return f"{value:.2f}"


def machine() -> dict[str, str]:
    """Cores, memory, Python and OS: what a figure depends on."""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(),
        "kubectl": _kubectl_version(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _kubectl_version() -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        return "absent"
    out = subprocess.run(
        [exe, "version", "--client", "-o", "yaml"], capture_output=True, text=True, check=False
    )
    try:
        return str(yaml.safe_load(out.stdout)["clientVersion"]["gitVersion"])
    except (TypeError, KeyError, yaml.YAMLError):
        return "unknown"


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:  # noqa: PYI034 -- final class, no Self needed
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or with None, unset) environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
