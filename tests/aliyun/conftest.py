"""Opt-in tests against a real Alibaba Cloud account and ACK cluster, as moto's aws_verified.

Nothing here runs unless ``EGRESS_TEST_PARAMS`` names a parameters file with ``target: aliyun``
(credentials come from the default chain: environment, CLI profile, RAM role). Then:

    EGRESS_TEST_PARAMS=parameters/my-test-cluster.yaml pytest -m aliyun tests/aliyun
    EGRESS_TEST_PARAMS=... EGRESS_TEST_WRITE=yes pytest -m aliyun_write tests/aliyun

``aliyun`` only reads (every plan is read-only); ``aliyun_write`` runs the whole runbook and its
teardown, so point it at a throwaway cluster, and it also wants ``EGRESS_TEST_WRITE=yes``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PARAMS_ENV = "EGRESS_TEST_PARAMS"
WRITE_ENV = "EGRESS_TEST_WRITE"


def params_file() -> Path:
    value = os.environ.get(PARAMS_ENV)
    if not value:
        pytest.skip(f"real-cloud test: set {PARAMS_ENV} to a parameters file with target aliyun")
    return Path(value)


@pytest.fixture(scope="module")
def real_params_file() -> Path:
    return params_file()


@pytest.fixture(scope="module")
def real_session(real_params_file: Path) -> Iterator[Any]:
    from egress_lib import connect, load_parameters

    params = load_parameters(real_params_file)
    if params.target != "aliyun":
        pytest.skip(f"{PARAMS_ENV} names a {params.target!r} target, not aliyun")
    session = connect(params)
    try:
        yield session
    finally:
        session.close()
