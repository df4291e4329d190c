"""A sandbox in its own process, as `egress-sandbox up` starts it: what the benchmarks measure.

Its own process, so that a client measured against it (egress_lib, kubectl, curl) never shares
a GIL with the server. Requests are counted from its audit log (``audit.jsonl``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import BIN


@dataclass
class SandboxProcess:
    home: Path
    env: dict[str, str]  # the exports of `egress-sandbox env`
    pid: int
    k8s_url: str
    aliyun_endpoint: str

    @property
    def kubeconfig(self) -> str:
        return self.env["KUBECONFIG"]

    def audit_mark(self) -> int:
        """The number of requests answered so far (a mark to count from)."""
        path = self.home / "audit.jsonl"
        if not path.exists():
            return 0
        with path.open("rb") as f:
            return sum(1 for _ in f)

    def audit_since(self, mark: int) -> list[dict[str, Any]]:
        path = self.home / "audit.jsonl"
        if not path.exists():
            return []
        with path.open() as f:
            lines = f.readlines()[mark:]
        return [json.loads(line) for line in lines if line.strip()]

    def rss_mib(self) -> float:
        """The sandbox process's peak resident memory so far (VmHWM)."""
        return _vm_hwm_mib(self.pid)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "egress-sandbox"), "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            check=True,
            env=_clean_env(),
        )
        return out.stdout

    def down(self) -> None:
        self.cli("down")


def _vm_hwm_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def self_peak_rss_mib() -> float:
    """This process's peak resident memory so far."""
    return _vm_hwm_mib(os.getpid())


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    return env


def start(
    home: Path, block: int, transition_seconds: float = 0.0, **topology: Any
) -> SandboxProcess:
    """A fresh sandbox on ``127.<block>.0.0/16`` with the given transition delay."""
    from egress_sandbox.topology import Topology

    home.mkdir(parents=True, exist_ok=True)
    topo = Topology.loopback(block, transition_seconds).model_copy(update=topology)
    topo_file = home.parent / f"{home.name}-topology.yaml"
    topo_file.write_text(yaml.safe_dump(topo.model_dump(mode="json", exclude_defaults=True)))
    base = [str(BIN / "egress-sandbox"), "--home", str(home)]
    subprocess.run([*base, "reset"], capture_output=True, check=False, env=_clean_env())
    subprocess.run(
        [*base, "up", "--topology", str(topo_file)],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    env_out = subprocess.run(
        [*base, "env"], capture_output=True, text=True, check=True, env=_clean_env()
    ).stdout
    env: dict[str, str] = {}
    for line in env_out.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line.removeprefix("export ").split("=", 1)
            env[k] = v.strip("'\"")
    status = yaml.safe_load(
        subprocess.run(
            [*base, "status"], capture_output=True, text=True, check=True, env=_clean_env()
        ).stdout
    )
    return SandboxProcess(
        home=home,
        env=env,
        pid=int(status["pid"]),
        k8s_url=str(status["k8s_url"]),
        aliyun_endpoint=str(status["aliyun_endpoint"]),
    )


def requests_by(records: list[dict[str, Any]]) -> Counter[str]:
    """Requests counted by ``api verb`` (``k8s list``, ``vpc CreateSnatEntry``)."""
    return Counter(f"{r['api']} {r['action']}" for r in records)


def writes(records: list[dict[str, Any]]) -> int:
    """Writes that changed something: the audit log marks server dry runs mutating too."""
    return sum(
        1
        for r in records
        if r.get("mutating") and "dryRun" not in str(r.get("path")) and int(r["status"]) < 400
    )
