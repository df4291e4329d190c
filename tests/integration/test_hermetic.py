"""The whole runbook under a guard that refuses every socket beyond loopback (block 50).

The guard is ``tests/hermetic/sitecustomize.py``: with ``PYTHONPATH=tests/hermetic`` every
Python process imports it at start-up, and with ``EGRESS_HERMETIC_VIOLATIONS`` set it installs
an audit hook that raises on any connect, bind, sendto or sendmsg outside 127.0.0.0/8 and ::1,
and on any name lookup but ``localhost`` and IP literals, recording each refusal in that file.
DNS counts as a leak: libc sends the query from C, where no hook sees it, so the lookup itself
is refused.

Every process of a run is covered: ``egress-sandbox up`` and the sandbox it starts (``serve``,
which inherits the environment), ``egress-runbook run`` and ``teardown``, and every Jupyter
kernel papermill starts for a step. The test proves the guard was live in each (its ``loaded``
lines, and every Python program any of them started is among them), not only that the
violations file stayed empty.

The pods are curl processes, not Python: the guard cannot hook them. They open no socket of
their own: the sandbox's kubelet starts each inside ``unshare --net`` (an empty network
namespace, where only the pod's UNIX socket into the pod network reaches anything), and the pod
network is a SOCKS proxy served by the sandbox process, which opens every connection a pod makes
(to a CLB listener or the origin) and is guarded. The test checks, from the ``exec`` lines the
sandbox's guard writes, that every curl was so started, and from its ``socket`` lines that the
sandbox connected to the gateway's CLB address for them (on a host without ``unshare``: that
curl was given only the pod socket as proxy, resolving nothing itself). The kernels' ZMQ
channels are libzmq's (C), so the guard in each kernel checks that its connection file names a
loopback address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from egress_sandbox.topology import Topology

REPO = Path(__file__).resolve().parents[2]
GUARD_DIR = REPO / "tests" / "hermetic"
PARAMS = REPO / "parameters" / "sandbox.yaml"
BLOCK = 50
CURL = "/usr/bin/curl"  # egress_sandbox.kubelet.runner.CURL
# curl options that would point it at another proxy or none (kubelet.curlcmd refuses them).
PROXY_OPTIONS = ("-x", "--proxy", "--noproxy", "--preproxy", "--socks4", "--socks5")

pytestmark = [pytest.mark.slow]


def guarded_env(violations: Path, log: Path, **extra: str) -> dict[str, str]:
    """This environment, without proxies, with the guard on for every Python child."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(GUARD_DIR), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    env["EGRESS_HERMETIC_VIOLATIONS"] = str(violations)
    env["EGRESS_HERMETIC_LOG"] = str(log)
    env["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
    env.update(extra)
    return env


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def python(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# ---- the guard refuses, before anything leaves ------------------------------------------------

SELF_TEST = r"""
import json, socket
out = {}
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(0.5)
try:
    s.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed to the internet
    out["connect"] = "connected"
except OSError as e:
    out["connect"] = f"{type(e).__name__}: {e}"
# Had connect(2) run, the kernel would have bound the socket to a local port to send the SYN.
out["local"] = list(s.getsockname())
s.close()
try:
    socket.create_connection(("example.com", 80), timeout=0.5)
    out["dns"] = "connected"
except OSError as e:
    out["dns"] = f"{type(e).__name__}: {e}"
b = socket.socket()
try:
    b.bind(("0.0.0.0", 0))
    out["bind"] = "bound"
except OSError as e:
    out["bind"] = f"{type(e).__name__}: {e}"
b.close()
listener = socket.create_server(("127.0.0.1", 0))
with socket.create_connection(listener.getsockname(), timeout=5) as c:
    out["loopback"] = c.getpeername()[0]
out["localhost"] = socket.getaddrinfo("localhost", 80)[0][4][0]
print(json.dumps(out))
"""


def test_the_guard_refuses_a_non_loopback_connect_before_a_packet_leaves(tmp_path: Path) -> None:
    violations, log = tmp_path / "violations.jsonl", tmp_path / "guard.jsonl"
    done = python(guarded_env(violations, log), "-c", SELF_TEST)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)

    assert out["connect"].startswith("HermeticViolation: hermetic guard refused socket.connect")
    assert out["local"] == ["0.0.0.0", 0]  # never bound: connect(2) did not run, no SYN left
    assert out["dns"].startswith("HermeticLookupRefused: ")
    assert "example.com" in out["dns"] and "DNS" in out["dns"]
    assert out["bind"].startswith("HermeticViolation: ")  # a wildcard listener is refused too
    assert out["loopback"] == "127.0.0.1" and out["localhost"] in ("127.0.0.1", "::1")

    refused = [(v["event"], v["address"]) for v in lines(violations)]
    assert refused == [
        ("socket.connect", "('192.0.2.1', 9)"),
        ("socket.getaddrinfo", "'example.com'"),
        ("socket.bind", "('0.0.0.0', 0)"),
    ]
    (loaded,) = [r for r in lines(log) if r["kind"] == "loaded"]
    assert loaded["argv"][:2] == [sys.executable, "-c"]


def test_without_the_variable_the_guard_does_nothing(tmp_path: Path) -> None:
    # tests/hermetic may be on PYTHONPATH elsewhere: the guard is inert until asked for.
    env = guarded_env(tmp_path / "violations.jsonl", tmp_path / "guard.jsonl")
    del env["EGRESS_HERMETIC_VIOLATIONS"]
    code = (
        "import socket, sitecustomize; s = socket.socket(); s.bind(('0.0.0.0', 0)); s.close(); "
        "print(sitecustomize.__file__)"
    )
    done = python(env, "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(GUARD_DIR / "sitecustomize.py")
    assert not (tmp_path / "guard.jsonl").exists()


# ---- the whole runbook ------------------------------------------------------------------------


def _unshare_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    done = subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def pod_is_sealed(record: dict[str, Any], isolated: bool) -> str:
    """'' when the curl of ``record`` can open no socket but its pod-network socket."""
    argv: list[str] = record["argv"]
    at = argv.index(CURL)
    if isolated:
        wrapper = argv[:at]
        if not wrapper or Path(wrapper[0]).name != "unshare" or "--net" not in wrapper:
            return f"curl not started in an empty network namespace: {argv}"
        return ""
    proxy = (record["env_proxies"] or {}).get("ALL_PROXY", "")
    if not proxy.startswith("socks5h://localhost/"):
        return f"curl's proxy is not the pod socket (resolving nothing): {proxy!r}"
    if any(a in PROXY_OPTIONS or a.startswith("--proxy") for a in argv[at:]):
        return f"curl given its own proxy options: {argv}"
    return ""


@pytest.mark.curl
@pytest.mark.timeout(900)
def test_the_whole_runbook_opens_no_socket_beyond_loopback(tmp_path: Path) -> None:
    if not Path(CURL).exists():
        pytest.skip(f"{CURL} is absent: the sandbox cannot run the verify pods")
    home, runs = tmp_path / "home", tmp_path / "runs"
    home.mkdir()
    topology = tmp_path / "topology.yaml"
    topology.write_text(yaml.safe_dump(Topology.loopback(BLOCK).model_dump(mode="json")))
    violations, log = tmp_path / "violations.jsonl", tmp_path / "guard.jsonl"
    env = guarded_env(violations, log, EGRESS_SANDBOX_HOME=str(home))
    sandbox = ("-m", "egress_sandbox.cli", "--home", str(home))

    up = python(env, *sandbox, "up", "--topology", str(topology), timeout=120)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        runbook = ("-m", "egress_lib.cli")
        approved = (str(PARAMS), "--approve", "--out", str(runs))
        ran = python(env, *runbook, "run", *approved, timeout=600)
        down = python(env, *runbook, "teardown", *approved, timeout=300)
    finally:
        # The sandbox's last records are written by the time it has stopped.
        stopped = python(env, *sandbox, "down", timeout=120)
    refused = lines(violations)
    assert refused == [], "sockets beyond loopback:\n" + "\n".join(map(json.dumps, refused))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "all 7 steps passed" in ran.stdout
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr

    records = lines(log)
    loaded = [r for r in records if r["kind"] == "loaded"]

    def loaded_with(*words: str) -> list[dict[str, Any]]:
        return [r for r in loaded if all(w in r["argv"] for w in words)]

    # The guard was live in the sandbox, in both runner processes and in every kernel.
    (serve,) = loaded_with("egress_sandbox.cli", "serve")
    assert loaded_with("egress_lib.cli", "run") and loaded_with("egress_lib.cli", "teardown")
    kernels = loaded_with("ipykernel_launcher")
    notebooks = sorted(p.name for p in runs.rglob("*.ipynb"))
    assert len(notebooks) == 8 and "99-teardown.ipynb" in notebooks, notebooks
    assert len(kernels) == len(notebooks)
    channels = [r for r in records if r["kind"] == "kernel"]
    assert len(channels) == len(kernels)
    assert {(c["transport"], c["ip"]) for c in channels} == {("tcp", "127.0.0.1")}

    # Every Python program any guarded process started loaded the guard itself.
    started = [r for r in records if r["kind"] == "exec"]
    children = {
        tuple(r["argv"])
        for r in started
        if r["argv"] and Path(r["argv"][0]).name.startswith("python")
    }
    assert children, "no Python child seen: the exec records are missing"
    assert children <= {tuple(r["argv"]) for r in loaded}, children

    # The pods: curl, started by the sandbox, sealed off so that the sandbox opens its sockets.
    pods = [r for r in started if r["pid"] == serve["pid"] and CURL in r["argv"]]
    assert pods, "verify ran no pod"
    isolated = _unshare_works()
    unsealed = [why for why in (pod_is_sealed(r, isolated) for r in pods) if why]
    assert unsealed == []
    assert not [r for r in started if CURL in r["argv"] and r["pid"] != serve["pid"]]
    # The pods' traffic went out through sockets the guarded sandbox opened: it served their
    # UNIX sockets and connected to the gateway's CLB address (127.50.2.x) on their behalf.
    reached = {(r["event"], r["host"]) for r in records if r["kind"] == "socket"}
    by_sandbox = {
        (r["event"], r["host"])
        for r in records
        if r["kind"] == "socket" and r["pid"] == serve["pid"]
    }
    assert ("socket.bind", "unix") in by_sandbox
    clb = f"127.{BLOCK}.2."
    assert any(e == "socket.connect" and h.startswith(clb) for e, h in by_sandbox), by_sandbox
    assert all(h in ("unix", "other") or h.startswith("127.") or h == "::1" for _, h in reached)
