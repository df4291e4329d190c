"""Benchmark 5: the data plane: requests through the gateway against straight to the origin.

A fresh sandbox in its own process; steps 01 to 05 applied through ``egress_lib`` as the
notebooks apply them (add-on, gateway and IngressClass, SNAT, the ExternalName Service, the
Ingress), so the gateway routes ``www.aliyun.com`` by its Ingress and leaves by the SNAT EIP.
The load client (:mod:`benchmarks.load_client`, its own process) then sends GETs, on 1 and on 8
keep-alive connections for a fixed window:

* through the gateway: to the CLB address on listener 80 with ``Host: www.aliyun.com``;
* straight to the origin: to the sandbox's origin server for the same host, with the PROXY
  line the NAT would send (the EIP the gateway leaves by, the host's public address), so the
  origin does the same work for both.

Added latency is p50 through minus p50 direct, per repetition; the two runs alternate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import sandbox_process
from benchmarks.harness import REPO, Context, Figure, environ
from benchmarks.throughput import load

TITLE = "Data plane: through the gateway against straight to the origin"
BENCH = "5 data plane"
PARAMS = REPO / "parameters" / "sandbox.yaml"
HOST = "www.aliyun.com"  # the destination parameters/sandbox.yaml declares
PATH = "/product/aliware/mse"
CONNECTIONS = (1, 8)
INGRESS = ("default", "mse-ingress")


def set_up(sb: sandbox_process.SandboxProcess) -> tuple[str, int]:
    """Apply steps 01 to 05 as the notebooks do; the CLB address and port the Ingress names."""
    from egress_lib import connect, load_parameters
    from egress_lib.steps import RUNBOOK

    with environ(**sb.env):
        session = connect(load_parameters(PARAMS, {"approve": True}))
        try:
            for step in RUNBOOK[1:6]:  # 01-install-controller .. 05-ingress-routes
                step.module.apply(session)
            ing = session.networking.read_namespaced_ingress(INGRESS[1], INGRESS[0])
        finally:
            session.close()
    entry = ing.status.load_balancer.ingress[0]
    # The status carries a port only when the data plane could not bind 80.
    port = entry.ports[0].port if entry.ports else 80
    return str(entry.ip), int(port)


def origin_port(home: Path) -> int:
    info = json.loads((home / "sandbox.json").read_text())
    return int(info["origin_ports"][0])  # (HTTP, HTTPS)


def proxy_line(eip: str) -> str:
    """The PROXY v1 line the sandbox's NAT sends for ``HOST`` on port 80, from ``eip``."""
    from egress_sandbox.dataplane.publicnet import address_of  # a pure hash of the name

    return f"PROXY TCP4 {eip} {address_of(HOST)} 40000 80\r\n"


def runs(clb: tuple[str, int], origin: int, eip: str, n: int) -> list[dict[str, Any]]:
    base = {"kind": "http", "host": HOST, "path": PATH, "connections": n}
    return [
        {**base, "name": "through", "address": clb[0], "port": clb[1]},
        {
            **base,
            "name": "direct",
            "address": "127.0.0.1",
            "port": origin,
            "proxy_line": proxy_line(eip),
        },
    ]


def egress_ip(clb: tuple[str, int]) -> str:
    """The source address the origin saw for one request through the gateway (the EIP)."""
    import http.client

    conn = http.client.HTTPConnection(clb[0], clb[1], timeout=30)
    try:
        conn.request("GET", PATH, headers={"Host": HOST})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"the gateway answered {resp.status}: {body[:200]!r}")
    return str(json.loads(body)["source_ip"])


def run(ctx: Context) -> list[Figure]:
    duration = 1.0 if ctx.smoke else 5.0
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    sb = sandbox_process.start(ctx.workdir / "home", ctx.block)
    try:
        clb = set_up(sb)
        eip = egress_ip(clb)
        origin = origin_port(sb.home)
        for _ in range(ctx.repeats):
            for n in CONNECTIONS:
                for r in load(runs(clb, origin, eip, n), duration, sb.pid):
                    results.setdefault((r["name"], n), []).append(r)
    finally:
        sb.down()
    return figures(results, duration)


STALL = (
    "Mostly idle, yet about 40 ms a request: a Nagle / delayed-ACK stall (seen with strace). "
    "The origin's and the gateway's handlers (http.server, unbuffered wfile) send the response "
    "head and the body in two writes on a keep-alive connection without TCP_NODELAY: the body "
    "waits until the client's delayed ACK of the head. Fix in egress_sandbox/dataplane: "
    "TCP_NODELAY on accepted sockets (listener.py Listener._accept_loop), or one write per "
    "response. Upstream the gateway opens a new connection per request (forward.py, "
    "`connection: close`), whose close flushes at once, so that leg does not stall"
)


def stalled(rows: list[dict[str, Any]]) -> bool:
    """Whether the median request waited ~40 ms while the sandbox was mostly idle."""
    p50 = sorted(float(r["p50_ms"]) for r in rows)[len(rows) // 2]
    cores = sorted(float(r["server_cores"]) for r in rows)[len(rows) // 2]
    return p50 >= 35.0 and cores < 0.5


def figures(results: dict[tuple[str, int], list[dict[str, Any]]], duration: float) -> list[Figure]:
    out: list[Figure] = []
    explained = False  # the stall is explained once, on the first figure that shows it
    for n in CONNECTIONS:
        through, direct = results[("through", n)], results[("direct", n)]
        for name, rows in (("through the gateway", through), ("direct to the origin", direct)):
            errors = sum(int(r["errors"]) for r in rows)
            first = next((r["first_error"] for r in rows if r["first_error"]), "")
            cores = sorted(float(r["server_cores"]) for r in rows)[len(rows) // 2]
            note = f"{n} keep-alive connections, back to back, {duration:.0f} s; "
            note += f"sandbox {cores:.2f} cores busy"
            if errors:
                note += f"; {errors} failed (first: {first})"
            if stalled(rows):
                note += ". " + ("Same stall as above" if explained else STALL)
                explained = True
            label = f"{n} conn{'s' if n > 1 else ''}, {name}"
            out.append(
                Figure(BENCH, f"{label}: rate", "req/s", [r["rate"] for r in rows], note=note)
            )
            out.append(Figure(BENCH, f"{label}: p50", "ms", [r["p50_ms"] for r in rows]))
            out.append(Figure(BENCH, f"{label}: p99", "ms", [r["p99_ms"] for r in rows]))
        out.append(
            Figure(
                BENCH,
                f"{n} conn{'s' if n > 1 else ''}: added latency (p50 through - p50 direct)",
                "ms",
                [t["p50_ms"] - d["p50_ms"] for t, d in zip(through, direct, strict=True)],
            )
        )
        out.append(
            Figure(
                BENCH,
                f"{n} conn{'s' if n > 1 else ''}: rate through / direct",
                "x",
                [
                    t["rate"] / d["rate"] if d["rate"] else float("nan")
                    for t, d in zip(through, direct, strict=True)
                ],
            )
        )
    return out
