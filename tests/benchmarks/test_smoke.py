"""Each benchmark at its smallest size, once: `make bench` works, and its figures are numbers.

The figures are not judged here (a test never asserts a speed); ``make bench`` reports them
against their targets in BENCHMARKS.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks.harness import Context, Figure
from benchmarks.report import render_markdown, render_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# The suite's own times are read from the record `make test` writes; nothing to run small.
MEASURED = [(name, block) for name, block in bench.BENCHMARKS if name != "suite_times"]


@pytest.mark.parametrize(("name", "block"), MEASURED, ids=[n for n, _ in MEASURED])
def test_each_benchmark_runs_at_its_smallest_size(name: str, block: int, tmp_path: Path) -> None:
    mod = bench.load(name)
    ctx = Context(smoke=True, repeats=1, workdir=tmp_path, block=block + bench.SMOKE_OFFSET)
    figures = mod.run(ctx)
    assert figures, f"{name} measured nothing"
    for f in figures:
        assert isinstance(f, Figure)
        assert f.samples, f"{name}: {f.name} has no sample ({f.note})"
        assert all(math.isfinite(x) and x >= 0 for x in f.samples), (f.name, f.samples)
        assert f.unit
    # The table and BENCHMARKS.md render every figure.
    table = render_table(figures)
    md = render_markdown(figures, {"cores": "2"}, "now", "python -m benchmarks --smoke", {}, [])
    for f in figures:
        assert f.name.strip() in table and f.name.strip() in md


def test_suite_times_reads_what_make_test_records(tmp_path: Path) -> None:
    from benchmarks import suite_times

    record = tmp_path / "suite-times.json"
    for part, seconds in zip(suite_times.PARTS, (1.0, 20.0, 200.0, 30.0), strict=True):
        suite_times.record(part, seconds, 0, record)
    ctx = Context(smoke=True, repeats=1, workdir=tmp_path, block=0)
    total, nbval = suite_times.run(ctx, record)
    assert total.samples == [251.0] and total.meets is True
    assert nbval.samples == [30.0]
    # A new `make test` starts a new record; one that failed is not a figure.
    suite_times.record("lint", 1.0, 0, record)
    suite_times.record("types", 9.0, 1, record)
    (total, _) = suite_times.run(ctx, record)
    assert total.samples == [] and "no complete, passing" in total.note


def test_the_runner_writes_benchmarks_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "BENCHMARKS.md"
    code = bench.main(
        [
            "--only",
            "suite_times",
            "--repeats",
            "5",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 0
    text = out.read_text()
    assert "| benchmark | figure |" in text and "- cores: " in text and "- python: " in text
    assert "make test (lint, types, pytest, nbval)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--repeats", "3"])
    assert "at least 5" in capsys.readouterr().err
