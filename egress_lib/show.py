"""Display helpers for notebooks (no IPython import: Jupyter calls the _repr_ methods)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from egress_lib.kube import strip_server_fields
from egress_lib.manifests import to_yaml


@dataclass(frozen=True)
class YamlBlock:
    """YAML text that renders as a code block in Jupyter and as plain text elsewhere."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return f"```yaml\n{self.text}```\n"

    def _repr_html_(self) -> str:
        return f"<pre><code class='language-yaml'>{html.escape(self.text)}</code></pre>"


def yaml_block(objs: dict[str, Any] | Iterable[dict[str, Any]]) -> YamlBlock:
    """Objects as YAML documents, without managedFields and last-applied annotations."""
    items = [objs] if isinstance(objs, dict) else list(objs)
    return YamlBlock(to_yaml([strip_server_fields(o) for o in items]))
