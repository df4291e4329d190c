"""The fault matrix's session: the saved worlds its cells start from, and the printed matrix.

Blocks (tests/conftest.py): 51 for the matrix's sandboxes (one at a time), 55 for the
concurrency test. The matrix is printed at the end of the session and written to
``test-artifacts/faults/matrix.txt`` (or under ``$EGRESS_TEST_ARTIFACTS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_run import Forks, matrix_file
from fault_table import MATRIX
from fault_world import Worlds


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Worlds:
    built = Worlds(tmp_path_factory.mktemp("fault-worlds"))
    built.build()
    return built


@pytest.fixture(scope="session")
def forks() -> Iterator[Forks]:
    server = Forks()
    yield server
    server.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MATRIX.results:
        return
    text = MATRIX.render()
    path: Path = matrix_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    terminalreporter.write_sep("=", "fault matrix (steps against faults)")
    terminalreporter.write(text)
    terminalreporter.write_line(f"written to {path}")
