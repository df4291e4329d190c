"""How every ``egress-sandbox`` subcommand parser is made, so that all their --help read alike."""

from __future__ import annotations

import argparse
from typing import Any


def sub_parser(sub: Any, name: str, summary: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand whose own --help opens with its one-line summary and keeps epilog layout.

    ``sub`` is what ``add_subparsers()`` returned (argparse keeps its type private).
    """
    kwargs.setdefault("description", summary[0].upper() + summary[1:] + ".")
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    return parser
