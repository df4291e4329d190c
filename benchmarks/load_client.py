"""A bounded load generator, run as its own process: ``python -m benchmarks.load_client``.

It reads a JSON spec on stdin and writes one JSON result per run on stdout. A separate process,
so that the client never shares a GIL with the server it measures (the sandbox, or the
benchmark that started it). Each run opens exactly ``connections`` keep-alive connections, one
per thread, sends one untimed request on each (the TLS handshake and the first connect stay out
of the figures), then sends requests back to back on each for ``duration`` seconds.

Spec: ``{"duration": 5.0, "server_pid": 123 (optional), "runs": [RUN, ...]}`` where RUN is one of

* ``{"kind": "k8s", "name", "connections", "url", "token", "ca", "method", "path",
  "body" (text or null; ``@N@`` in it is a new number per request), "content_type"}``:
  HTTPS with a bearer token (urllib3);
* ``{"kind": "openapi", "name", "connections", "endpoint", "access_key_id",
  "access_key_secret", "region_id"}``: VPC DescribeVpcs through the real SDK, signed as it signs;
* ``{"kind": "http", "name", "connections", "address", "port", "host", "path",
  "proxy_line" (text or null)}``: plain HTTP/1.1 with a Host header; ``proxy_line`` is sent
  first on every new connection (the origin wants a PROXY v1 line, as the NAT sends it).

Result per run: ``{"name", "connections", "ok", "errors", "seconds", "rate", "p50_ms",
"p99_ms", "first_error", "server_cores", "client_cores"}``; ``rate`` counts only answers with
the expected status; ``*_cores`` are CPU seconds per second of the window (the server's from
``/proc/<server_pid>/stat``).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Send = Callable[[], int]  # one request: its HTTP status
Opener = Callable[[], Send]  # a new connection (made on the thread that uses it)


def _k8s(run: dict[str, Any]) -> Opener:
    import urllib3

    url = urlsplit(run["url"])
    headers = {"Authorization": f"Bearer {run['token']}", "Accept": "application/json"}
    if run.get("content_type"):
        headers["Content-Type"] = run["content_type"]
    body: str | None = run.get("body")
    counter = iter(range(1 << 62))  # next() on it is atomic under the GIL

    def open_() -> Send:
        # One pool of one connection per thread: exactly one keep-alive connection each.
        pool = urllib3.HTTPSConnectionPool(
            url.hostname, url.port, maxsize=1, block=True, ca_certs=run["ca"], retries=False
        )

        def send() -> int:
            # "@N@" in a body becomes a new number each time, so that every PATCH changes
            # the object (a no-op patch could be cheaper than a real write).
            data = body.replace("@N@", str(next(counter))) if body is not None else None
            r = pool.request(run["method"], run["path"], body=data, headers=headers)
            return int(r.status)

        return send

    return open_


def _openapi(run: dict[str, Any]) -> Opener:
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_vpc20160428 import models as vpc_models
    from alibabacloud_vpc20160428.client import Client as VpcClient

    def open_() -> Send:
        # The SDK pools its keep-alive connections per endpoint (requests.Session, up to 40):
        # one thread per connection bounds how many are in use.
        client = VpcClient(
            open_api_models.Config(
                access_key_id=run["access_key_id"],
                access_key_secret=run["access_key_secret"],
                endpoint=run["endpoint"],
                protocol="http",
                region_id=run["region_id"],
                read_timeout=10000,
                connect_timeout=5000,
            )
        )
        request = vpc_models.DescribeVpcsRequest(region_id=run["region_id"])

        def send() -> int:
            resp = client.describe_vpcs(request)
            return int(resp.status_code or 0)

        return send

    return open_


def _http(run: dict[str, Any]) -> Opener:
    proxy_line = run.get("proxy_line")
    headers = {"Host": run["host"]}

    def open_() -> Send:
        conn = http.client.HTTPConnection(run["address"], int(run["port"]), timeout=30)

        def connect() -> None:
            conn.connect()
            if proxy_line:
                assert conn.sock is not None
                conn.sock.sendall(proxy_line.encode("ascii"))

        connect()

        def send() -> int:
            if conn.sock is None:  # the server closed it: reconnect (and resend the PROXY line)
                connect()
            conn.request("GET", run["path"], headers=headers)
            resp = conn.getresponse()
            resp.read()
            return int(resp.status)

        return send

    return open_


OPENERS: dict[str, Callable[[dict[str, Any]], Opener]] = {
    "k8s": _k8s,
    "openapi": _openapi,
    "http": _http,
}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (Linux /proc), or NaN."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def measure(run: dict[str, Any], duration: float, server_pid: int | None = None) -> dict[str, Any]:
    """``run["connections"]`` threads, each on its own connection, for ``duration`` seconds."""
    n = int(run["connections"])
    opener = OPENERS[run["kind"]](run)
    expect = int(run.get("expect", 200))
    ready = threading.Barrier(n + 1)
    go = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}
    first_error: list[str] = []
    window: dict[str, float] = {}

    def worker() -> None:
        mine: list[float] = []
        ok = errors = 0
        try:
            send = opener()
            send()  # untimed: the connect (and TLS handshake) is not what is measured
        # Three client libraries, each with its own errors: any failure is counted, not fatal.
        except Exception as exc:  # noqa: BLE001
            with lock:
                first_error.append(f"warm-up: {exc!r}")
            ready.wait()
            return
        ready.wait()
        go.wait()
        end = window["end"]
        while True:
            start = time.perf_counter()
            if start >= end:
                break
            try:
                status = send()
            except Exception as exc:  # noqa: BLE001 (as above)
                errors += 1
                with lock:
                    if not first_error:
                        first_error.append(repr(exc))
                send = opener()
                continue
            if status == expect:
                ok += 1
                mine.append(time.perf_counter() - start)
            else:
                errors += 1
                with lock:
                    if not first_error:
                        first_error.append(f"status {status}")
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    ready.wait()  # the window opens only once every connection is up
    server_cpu, client_cpu = _cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    window["end"] = started + duration
    go.set()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    return {
        "name": run["name"],
        "connections": n,
        "ok": counts["ok"],
        "errors": counts["errors"],
        "seconds": seconds,
        "rate": counts["ok"] / seconds if seconds > 0 else 0.0,
        "p50_ms": _percentile(latencies, 0.50) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "first_error": first_error[0] if first_error else "",
        # Cores busy over the window: where the two cores went (server, this client).
        "server_cores": server_cpu / seconds if seconds > 0 else float("nan"),
        "client_cores": client_cpu / seconds if seconds > 0 else float("nan"),
    }


def main() -> int:
    spec = json.load(sys.stdin)
    duration = float(spec["duration"])
    server_pid = spec.get("server_pid")
    for run in spec["runs"]:
        print(json.dumps(measure(run, duration, server_pid)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
