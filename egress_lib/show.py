"""Display helpers for notebooks (no IPython import: Jupyter calls the _repr_ methods)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from egress_lib.kube import strip_server_fields
from egress_lib.manifests import to_yaml
from egress_lib.tables import highlight


@dataclass(frozen=True)
class YamlBlock:
    """YAML text that renders highlighted in Jupyter and as plain text elsewhere."""

    text: str
    # A line said before the YAML, e.g. what does not exist (then the text may be empty).
    note: str = ""

    def __str__(self) -> str:
        if self.note:
            return f"{self.note}\n{self.text}" if self.text else self.note
        return self.text

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        note = f"*{self.note}*\n\n" if self.note else ""
        return note + (f"```yaml\n{self.text}```\n" if self.text else "")

    def _repr_html_(self) -> str:
        # JupyterLab prefers text/html to text/markdown, so the colours must be here.
        note = f"<p><i>{html.escape(self.note)}</i></p>" if self.note else ""
        return note + (highlight(self.text, "yaml") if self.text else "")


def yaml_block(
    objs: dict[str, Any] | Iterable[dict[str, Any]], *, note: str = "", empty: str = "no objects"
) -> YamlBlock:
    """Objects as YAML documents, without managedFields and last-applied annotations.

    ``note`` is said above them; ``empty`` is said when there are none.
    """
    items = [objs] if isinstance(objs, dict) else list(objs)
    if not items:
        return YamlBlock("", note or empty)
    return YamlBlock(to_yaml([_kind_first(strip_server_fields(o)) for o in items]), note)


def _kind_first(obj: dict[str, Any]) -> dict[str, Any]:
    # Some servers send apiVersion and kind last; a reader looks for them first.
    head: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    return {**head, **{k: v for k, v in obj.items() if k not in head}}
