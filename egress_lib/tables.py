"""How notebooks show tables and code: one renderer for every table the runbook displays.

A :class:`Table` renders as HTML that is left-aligned, has no index and cuts nothing (long
text wraps), and as aligned plain text for terminals and ``text/plain`` outputs. Styles are
inline because JupyterLab right-aligns and centres tables by default and nbviewer/GitHub
drop ``<style>`` blocks. The output holds nothing but the data, so nbval can compare it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import pandas as pd

Level = Literal["error", "warning"]

_TABLE = "border-collapse:collapse;margin:0.2em 0 0.8em 0;table-layout:auto"
_TH = "text-align:left;vertical-align:bottom;padding:0.25em 0.8em 0.25em 0"
# pre-wrap keeps a cell's line breaks and wraps long text; break-word splits only a word
# that cannot fit, so IDs stay whole wherever they can.
_TD = (
    "text-align:left;vertical-align:top;padding:0.25em 0.8em 0.25em 0;"
    "white-space:pre-wrap;overflow-wrap:break-word"
)


# A mark's colour in HTML; the text says the same without colour.
_MARK_COLOURS = {"✓": "#1a7f37", "⚠": "#9a6700", "✗": "#cf222e"}


class Mark(str):
    """A check's outcome in a cell: a string that HTML shows in its colour."""

    __slots__ = ()


def mark(ok: bool, level: Level = "error") -> Mark:
    """``✓`` for a pass; ``⚠ warning`` or ``✗ error`` for a failure (the word only then)."""
    if ok:
        return Mark("✓")
    return Mark("⚠ warning" if level == "warning" else "✗ error")


def cell_text(value: Any) -> str:
    """A cell as text: None and NaN are blank, booleans yes/no, whole floats without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


class Table:
    """Rows under named columns, for people: HTML in notebooks, aligned text elsewhere."""

    def __init__(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]] = (),
        *,
        empty: str = "none",
    ) -> None:
        self.columns = tuple(columns)
        self.rows = tuple(tuple(r) for r in rows)
        # What an empty table says instead of rows, e.g. "no SNAT entries yet".
        self.empty = empty
        for r in self.rows:
            if len(r) != len(self.columns):
                raise ValueError(f"a row has {len(r)} cells for {len(self.columns)} columns")

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, empty: str = "none") -> Table:
        """A DataFrame's columns and rows (its index is dropped)."""
        rows = frame.astype(object).itertuples(index=False, name=None)
        return cls([str(c) for c in frame.columns], rows, empty=empty)

    def to_frame(self) -> pd.DataFrame:
        """The same rows as a DataFrame, values as they are (for code, not for reading)."""
        frame: pd.DataFrame = pd.DataFrame([list(r) for r in self.rows], columns=list(self.columns))
        return frame

    def select(self, *columns: str) -> Table:
        """Only ``columns``, in that order."""
        index = [self.columns.index(c) for c in columns]
        rows = [[r[i] for i in index] for r in self.rows]
        return Table(columns, rows, empty=self.empty)

    def column(self, name: str) -> list[Any]:
        """The values of one column."""
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        return text_table(self.columns, self.rows, empty=self.empty)

    def __repr__(self) -> str:
        # Notebooks show this as text/plain: the table itself, not the constructor call.
        return str(self)

    def _repr_html_(self) -> str:
        return html_table(self.columns, self.rows, empty=self.empty)


class ShowsTable:
    """Text and HTML forms from ``to_table()``: a notebook shows the table, not the fields.

    Dataclasses using it must pass ``repr=False``, or their generated ``__repr__`` wins.
    """

    def to_table(self) -> Table:
        raise NotImplementedError

    def __str__(self) -> str:
        return str(self.to_table())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.to_table()._repr_html_()


def text_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str = "none"
) -> str:
    """Columns padded to their widest cell, two spaces apart; a cell's lines stay aligned."""
    if not columns:
        return f"({empty})"
    out: list[str] = []
    cells = [[cell_text(v).splitlines() or [""] for v in r] for r in rows]
    header = [[c] for c in columns]
    widths = [
        max(len(line) for row in [header, *cells] for line in row[i]) for i in range(len(columns))
    ]
    for row in [header, *cells]:
        for k in range(max(len(c) for c in row)):
            parts = [
                (c[k] if k < len(c) else "").ljust(w) for c, w in zip(row, widths, strict=True)
            ]
            out.append("  ".join(parts).rstrip())
    if not rows:
        out.append(f"({empty})")
    return "\n".join(out)


def html_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str = "none"
) -> str:
    """A left-aligned HTML table without an index; every cell escaped, none cut."""
    if not columns:
        return f"<p><i>{html.escape(empty)}</i></p>"
    head = "".join(f'<th style="{_TH}">{html.escape(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(_td(v) for v in r) + "</tr>" for r in rows)
    if not rows:
        body = (
            f'<tr><td style="{_TD}" colspan="{len(columns)}"><i>{html.escape(empty)}</i></td></tr>'
        )
    return (
        f'<table class="egress-table" style="{_TABLE}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _td(value: Any) -> str:
    text = html.escape(cell_text(value))
    colour = _MARK_COLOURS.get(value[:1]) if isinstance(value, Mark) else None
    if colour:
        text = f'<span style="color:{colour};font-weight:bold">{text}</span>'
    return f'<td style="{_TD}">{text}</td>'


def highlight(text: str, language: Literal["yaml", "diff"] = "yaml") -> str:
    """``text`` as an HTML code block, coloured by pygments with inline styles.

    Inline styles (no CSS classes) so that colours survive in JupyterLab, nbviewer and
    GitHub; without pygments the block is plain, escaped text.
    """
    try:
        from pygments import highlight as render  # type: ignore[import-untyped]  # no stubs
        from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
        from pygments.lexers import DiffLexer, YamlLexer  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - pygments comes with IPython
        return f"<pre><code class='language-{language}'>{html.escape(text)}</code></pre>"
    lexer = DiffLexer() if language == "diff" else YamlLexer()
    out: str = render(text, lexer, HtmlFormatter(noclasses=True))
    return out
