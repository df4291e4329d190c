"""The error catalogue is the one source: every raisable class is a row, and the docs list each."""

from __future__ import annotations

import re
from pathlib import Path

from egress_sandbox.aliyun.common import errors

DOC = Path(__file__).resolve().parents[3] / "docs" / "aliyun-emulation.md"


def test_every_error_class_is_a_catalogue_row() -> None:
    classes = [
        v
        for v in vars(errors).values()
        if isinstance(v, type)
        and issubclass(v, errors.ApiError)
        and v.__module__ == errors.__name__
    ]
    for cls in classes:
        if cls in (errors.ApiError, errors.DynamicError, errors.MissingParameter):
            continue
        spec = errors.CATALOGUE[cls.code]
        assert (cls.status, cls.default_message) == (spec.status, spec.message), cls.code


def test_docs_table_matches_the_catalogue() -> None:
    rows = dict(re.findall(r"^\| `([^`]+)` \| (\d{3}) \|", DOC.read_text(), flags=re.MULTILINE))
    assert {code: spec.status for code, spec in errors.CATALOGUE.items()} == {
        code: int(status) for code, status in rows.items()
    }
