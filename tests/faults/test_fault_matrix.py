"""Every mutating step against every fault, each cell its own test (``test_cell[03-reset]``).

See fault_cells.py for what each cell does and expects, fault_run.py for how it is judged,
fault_checks.py for what "no duplicate, no orphan" means in the sandbox's state and audit log.
"""

from __future__ import annotations

import pytest
from fault_cells import CELLS, FAULT_TITLES, Cell
from fault_run import NA, Forks, play
from fault_table import MATRIX
from fault_world import TITLES, Worlds

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(cell: Cell, worlds: Worlds, forks: Forks) -> None:
    verdict = play(cell, worlds, forks)
    MATRIX.record(cell, verdict)
    if verdict.outcome == NA:
        pytest.skip(f"n/a: {verdict.detail}")
    assert verdict.passed, f"{TITLES[cell.step]} x {FAULT_TITLES[cell.fault]}: {verdict.detail}"
