"""Fixtures shared by the integration tests: one sandbox per session, in this process.

The sandbox serves real HTTP on loopback, and the tests drive it with the real SDKs and the
real ``kubernetes`` client. Its VPC sits on 127.17.0.0/16 so that it never collides with a
``make demo`` sandbox (127.16.0.0/16) running at the same time.

Every Sandbox gets a ``Topology.loopback(N)`` block of its own, because CLB addresses (and port
80 on them) are not free-port based. Blocks in use, 127.N.0.0/16:

    16  make demo / egress-sandbox up (the default topology)
    17  the session fixture below
    18  notebooks/conftest.py and scripts/refresh_notebooks.py (nbval)
    19  tests/integration/test_seed_with_kubectl.py
    20  tests/integration/test_runner.py
    21  tests/sandbox/control/conftest.py (one sandbox per control test module)
    22  tests/sandbox/control/test_persistence.py (in-process stop/start)
    23  tests/sandbox/control/test_persistence.py (the CLI's up/down/reset)
    24  tests/sandbox/k8s/test_sandbox_events.py
    25  tests/integration/test_port_80_taken.py (port 80 held by another socket)
    26  tests/integration/test_lock.py
    28  tests/integration/test_plan_apply.py (a fresh sandbox per test, one at a time)
    29  tests/integration/test_error_remedies.py (the remedies on the sandbox's real paths)
    30  tests/browser/conftest.py (JupyterLab in Chromium)
    31  tests/integration/test_apply_panel.py (a fresh sandbox per test)
    32  tests/integration/test_ram_policy_runbook.py (a fresh sandbox per test, one at a time)
    33  tests/integration/test_mse_authorization.py (a sandbox per test: no MSE roles, public SLB)
    34  tests/integration/test_network_facts.py (a fresh sandbox per test)
    35  tests/integration/test_snat_choices.py (two EIPs, busy SNAT tables, Pending entries)
    36  tests/integration/test_verify_evidence.py (verify's egress address, bypass and route)
    37  tests/sandbox/dataplane/test_policy_traffic.py (IP lists, throttling, headers, retries)
    38  tests/sandbox/dataplane/test_policy_tls.py (upstream TLS, TLS offload, mirroring)
    39  tests/sandbox/dataplane/test_pod_addresses.py (pod addresses, hostNetwork, sources)
    40  tests/integration/test_egress_policies.py (00..07 with parameters/sandbox-policies.yaml)
    41  tests/integration/test_egress_policies.py (misconfigurations, a sandbox each)
    42  tests/integration/test_policy_references.py (policy references: check and preflight)
    43  tests/sandbox/dataplane/test_echo_server.py, then test_seed_objects.py (restarts it)
    44  tests/browser/test_lab_policies.py (notebook 07 in JupyterLab)
    45  tests/integration/test_retries.py (one retry policy: throttling, 5xx, resets, watches)
    46  tests/integration/test_step_convergence.py (Failed gateway, in-flight installs, Pending)
    47  tests/unit/test_bad_parameters.py (the corpus: check makes no API call)
    48  tests/sandbox/test_fuzz.py (malformed, oversized requests; test_http_limits: no block)
    49  tests/sandbox/control/test_one_per_home.py (one sandbox per home, random secrets)
    50  tests/integration/test_hermetic.py (the whole runbook under a loopback-only guard)
    51  tests/faults/ (the fault matrix: one sandbox at a time, each cell from a saved world)
    55  tests/faults/test_concurrency.py (two runs at the same moment)
    56  tests/integration/test_interrupted_runs.py (killed half-way: pending rows, leftover pods)
    60-65  make bench (benchmarks/__main__.py: one block per benchmark)
    70-75  tests/benchmarks/test_smoke.py (the same benchmarks, smallest size: 60-65 plus 10)

A new one takes the next free number and is added here.

Shared test helpers are plain modules in tests/ (``waiting``, ``sandbox_clients``): tests/ has
no packages, and pytest puts this folder on ``sys.path`` when it loads this conftest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The SDKs send every call through HTTP(S)_PROXY, even to loopback; the credential chain would
# probe the ECS metadata service. Neither may happen in tests.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from sandbox_env import sandbox_home

    with sandbox_home(tmp_path_factory.mktemp("sandbox-home"), 17) as box:
        yield box


@pytest.fixture
def params(sandbox: object):  # type: ignore[no-untyped-def]
    from egress_lib import load_parameters

    return load_parameters(REPO / "parameters" / "sandbox.yaml")
