"""The matrix of faults against steps, filled in as the cells run, and how it is printed."""

from __future__ import annotations

from fault_cells import CELLS, FAULT_TITLES, FAULTS, Cell
from fault_run import CONVERGED, FAILED, KILLED, NA, STOPPED, Verdict
from fault_world import STEPS, TITLES

SHORT = {
    CONVERGED: "converged",
    STOPPED: "stop+rerun",
    KILLED: "kill+rerun",
    NA: "n/a",
    FAILED: "FAILED",
}
LEGEND = (
    "converged   the run absorbed the fault: no duplicate, no orphan\n"
    "stop+rerun  it stopped with an error naming the cause; a fault-free re-run converged\n"
    "kill+rerun  the process was SIGKILLed inside its write; a re-run converged\n"
    "n/a         the fault cannot reach the step (reason below)\n"
    "FAILED      none of these (detail below)\n"
    "-           not run in this session"
)


class Matrix:
    def __init__(self) -> None:
        self.results: dict[tuple[str, str], Verdict] = {}

    def record(self, cell: Cell, verdict: Verdict) -> None:
        self.results[(cell.step, cell.fault)] = verdict

    def render(self) -> str:
        first = max(len(FAULT_TITLES[f]) for f in FAULTS)
        width = max(len(TITLES[s]) for s in STEPS)
        header = (
            "fault \\ step".ljust(first) + "  " + "  ".join(TITLES[s].ljust(width) for s in STEPS)
        )
        lines = [header.rstrip()]
        for fault in FAULTS:
            row = [
                SHORT[v.outcome] if (v := self.results.get((step, fault))) else "-"
                for step in STEPS
            ]
            line = FAULT_TITLES[fault].ljust(first) + "  " + "  ".join(c.ljust(width) for c in row)
            lines.append(line.rstrip())
        counts = {k: sum(1 for v in self.results.values() if v.outcome == k) for k in SHORT}
        lines.append("")
        lines.append(
            f"{len(self.results)} of {len(CELLS)} cells run: "
            + ", ".join(f"{n} {SHORT[k]}" for k, n in counts.items() if n)
        )
        lines += ["", LEGEND]
        failed = [(k, v) for k, v in sorted(self.results.items()) if v.outcome == FAILED]
        if failed:
            lines += ["", "FAILED:"]
            lines += [f"  {s} x {FAULT_TITLES[f]}: {v.detail}" for (s, f), v in failed]
        na = [(k, v) for k, v in sorted(self.results.items()) if v.outcome == NA]
        if na:
            lines += ["", "n/a:"]
            lines += [f"  {s} x {FAULT_TITLES[f]}: {v.detail}" for (s, f), v in na]
        return "\n".join(lines) + "\n"


MATRIX = Matrix()
