"""connect(): the sandbox is found through its home folder; secrets never show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from egress_lib.clients import SANDBOX_NOT_RUNNING, connect, mask, read_sandbox_info
from egress_lib.errors import EgressError
from egress_lib.parameters import load_parameters

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sEcReT-AccessKeySecret-0123456789"
TOKEN = "bearer-token-abcdef0123456789"
AK_ID = "LTSAexample00000000"


def write_home(home: Path, pid: int) -> None:
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: sandbox
  cluster: {{server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}
users:
- name: sandbox-admin
  user: {{token: "{TOKEN}"}}
contexts:
- name: sandbox
  context: {{cluster: sandbox, user: sandbox-admin}}
current-context: sandbox
""",
        encoding="utf-8",
    )
    info = {
        "aliyun_endpoint": "127.0.0.1:9",
        "kubeconfig": str(kubeconfig),
        "access_key_id": AK_ID,
        "access_key_secret": SECRET,
        "region_id": "cn-hangzhou",
        "cluster_id": "c91faf597d38ac44275f9fea2fc1ec992",
        "pid": pid,
    }
    (home / "sandbox.json").write_text(json.dumps(info), encoding="utf-8")


def test_connect_sandbox_never_shows_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_home(tmp_path, os.getpid())
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path))
    session = connect(load_parameters(ROOT / "parameters" / "sandbox.yaml"))
    try:
        shown = repr(session) + str(session) + session.target_description
        shown += repr(read_sandbox_info())
        assert SECRET not in shown and TOKEN not in shown
        assert "LTSA****0000" in session.target_description
        assert "127.0.0.1:9" in session.target_description
    finally:
        session.close()


def test_missing_sandbox_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path))
    with pytest.raises(EgressError, match="the sandbox is not running"):
        read_sandbox_info()


def test_stale_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    write_home(tmp_path, int(done.stdout))
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path))
    with pytest.raises(EgressError) as info:
        read_sandbox_info()
    assert SANDBOX_NOT_RUNNING in str(info.value)
    assert SECRET not in str(info.value)


def test_mask() -> None:
    assert mask("LTSA1234567890000") == "LTSA****0000"
    assert mask("short") == "****"
    assert mask(None) == "(none)"
