"""The table `make bench` prints, and BENCHMARKS.md."""

from __future__ import annotations

from benchmarks.harness import Figure, fmt


def _verdict(f: Figure) -> str:
    return {True: "met", False: "MISSED", None: ""}[f.meets]


def _row(f: Figure) -> list[str]:
    lo = fmt(min(f.samples), f.unit) if f.samples else "-"
    hi = fmt(max(f.samples), f.unit) if f.samples else "-"
    return [
        f.benchmark,
        f.name,
        fmt(f.median, f.unit),
        lo,
        hi,
        f.unit,
        str(len(f.samples)),
        f.target,
        _verdict(f),
    ]


HEADER = ["benchmark", "figure", "median", "min", "max", "unit", "n", "target", ""]


def render_table(figures: list[Figure]) -> str:
    rows = [HEADER, *(_row(f) for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    right = {2, 3, 4, 6}
    lines = []
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(
    figures: list[Figure],
    machine: dict[str, str],
    started: str,
    command: str,
    titles: dict[str, str],
    failed: list[str],
) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`benchmarks/`); do not edit by hand. Each figure is the median",
        "of its samples (n) with their minimum and maximum; every ratio was measured side by side,",
        "in the same repetition. Targets are those of issue 12; tests never assert them.",
        "",
        f"- date: {started}",
        f"- command: `{command}`",
        *(f"- {k}: {v}" for k, v in machine.items()),
        "",
        "## Figures",
        "",
        "| " + " | ".join([*HEADER[:-1], "verdict"]) + " |",
        "|" + "|".join(["---"] * len(HEADER)) + "|",
    ]
    for f in figures:
        out.append("| " + " | ".join(_md_cell(c) for c in _row(f)) + " |")
    missed = [f for f in figures if f.meets is False]
    notes = [f for f in figures if f.note]
    out += ["", "## Targets missed, and why", ""]
    if missed:
        out += [
            f"- **{f.benchmark}, {f.name.strip()}** ({fmt(f.median, f.unit)} {f.unit}, target "
            f"{f.target}): {f.note or 'no cause recorded'}"
            for f in missed
        ]
    else:
        out.append("None." if figures else "No figures.")
    out += ["", "## Notes", ""]
    out += [f"- {f.benchmark}, {f.name.strip()}: {f.note}" for f in notes if f.meets is not False]
    if failed:
        out += ["", "## Benchmarks that failed to run", ""]
        out += [
            f"- {name}: {titles.get(name, name)} (see the output of `make bench`)"
            for name in failed
        ]
    out += ["", "## Benchmarks", ""]
    out += [f"- `benchmarks/{name}.py`: {title}" for name, title in titles.items()]
    return "\n".join(out) + "\n"
