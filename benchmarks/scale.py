"""Benchmarks 3 (scale against kubectl) and 6 (memory of the largest apply).

N destinations go through egress_lib as notebooks 04 and 05 do (plan, then apply, of the
Services and then the Ingresses) and, side by side in the same repetition, through
``kubectl apply -f`` of the same manifests, each into a fresh namespace of one sandbox. Then
each re-applies its unchanged set. Requests are counted from the sandbox's audit log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import sandbox_process
from benchmarks.harness import REPO, Context, Figure, Timer, environ

TITLE = "Scale against kubectl, and memory"
BENCH = "3 scale"
MEM = "6 memory"
SIZES = [1, 10, 100, 300, 1000]
PARAMS = REPO / "parameters" / "sandbox.yaml"
KINDS = 2  # Service and Ingress: what "one LIST per kind" allows
BIG_BUDGET_S = 480.0  # the largest N, both tools, all repetitions: about 8 minutes at most
MIN_BIG_REPEATS = 3

Records = list[dict[str, Any]]


def destinations(n: int) -> list[dict[str, Any]]:
    """``d0001..dNNNN`` on ``dNNNN.example.com``, each its own Ingress (no ingress_name)."""
    return [
        {"name": f"d{i:04d}", "host": f"d{i:04d}.example.com", "port": 80} for i in range(1, n + 1)
    ]


def params(n: int, namespace: str) -> Any:
    from egress_lib import load_parameters

    overrides = {"approve": True, "namespace": namespace, "destinations": destinations(n)}
    return load_parameters(PARAMS, overrides)


def kind_verb(record: dict[str, Any]) -> str:
    """``k8s services create (dry run)``: the request's API, resource and verb, from its path."""
    if record["api"] != "k8s":
        return f"{record['api']} {record['action']}"
    path = str(record.get("path", ""))
    parts = path.split("?", 1)[0].strip("/").split("/")
    base = 2 if parts[0] == "api" else 3  # api/v1/RES or apis/GROUP/VERSION/RES
    if len(parts) > base + 2 and parts[base] == "namespaces":
        base += 2  # .../namespaces/NS/RES
    resource = parts[base] if len(parts) > base else path
    dry = " (dry run)" if "dryRun" in path else ""
    return f"k8s {resource} {record['action']}{dry}"


def real_writes(records: Records) -> int:
    """Writes that changed something: the audit marks dry runs as mutating, so skip them."""
    return sum(
        1
        for r in records
        if r.get("mutating") and "dryRun" not in str(r.get("path", "")) and r["status"] < 400
    )


def gets(records: Records) -> int:
    """GETs of the objects themselves (Services, Ingresses), not of discovery or the gateway."""
    objects = ("k8s services get", "k8s ingresses get")
    return sum(1 for r in records if kind_verb(r) in objects)


def lists(records: Records) -> int:
    return sum(1 for r in records if r["api"] == "k8s" and r["action"] == "list")


def by_kind(records: Records) -> str:
    counts = Counter(kind_verb(r) for r in records)
    return ", ".join(f"{k} {v}" for k, v in counts.most_common())


class Scale:
    """One sandbox set up to step 03, and the measurements of one repetition at one N."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sb = sandbox_process.start(ctx.workdir / "home", ctx.block)
        self.env = {**os.environ, **self.sb.env}
        self.cache = ctx.workdir / "kube-cache"  # kubectl's discovery cache, not the user's
        self.count = 0
        self.made: list[str] = []  # namespaces to delete once a repetition is measured

    def setup(self) -> None:
        """Steps 01-03 once, so that the IngressClass exists and the gateway listens."""
        from egress_lib import connect, steps

        with environ(**self.sb.env):
            session = connect(params(1, "default"))
            for step in (steps.controller, steps.gateway, steps.snat):
                step.apply(session, step.plan(session))
        self.kubectl("get", "namespaces")  # warms kubectl's discovery cache, as an operator's is

    def kubectl(self, *args: str) -> None:
        subprocess.run(
            ["kubectl", f"--cache-dir={self.cache}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def namespace(self, prefix: str) -> str:
        self.count += 1
        name = f"{prefix}-{self.count}"
        self.kubectl("create", "namespace", name)
        self.made.append(name)
        return name

    def cleanup(self) -> None:
        """Delete this repetition's namespaces, so that the next one meets an unloaded store.

        Without it the earlier sizes' objects pile up and slow the sandbox down for the later
        ones (every request grew slower with the objects held: ~19 req/s by N=300).
        """
        if self.made:
            self.kubectl("delete", "namespace", "--wait=true", *self.made)
            self.made.clear()

    def runbook(self, n: int) -> tuple[float, Records, float, Records]:
        """Apply then re-apply with egress_lib, as notebooks 04 and 05 do."""
        from egress_lib import connect, steps

        with environ(**self.sb.env):
            session = connect(params(n, self.namespace("lib")))

            def once() -> tuple[float, Records]:
                mark = self.sb.audit_mark()
                with Timer() as t:
                    for step in (steps.services, steps.ingress):
                        step.apply(session, step.plan(session))
                return t.seconds, self.sb.audit_since(mark)

            first, first_recs = once()
            again, again_recs = once()
        return first, first_recs, again, again_recs

    def by_kubectl(self, n: int) -> tuple[float, Records, float, Records]:
        """``kubectl apply -f`` of the same manifests, process start included, twice."""
        from egress_lib import manifests

        p = params(n, self.namespace("kubectl"))
        path = self.ctx.workdir / f"manifests-{self.count}.yaml"
        path.write_text(
            manifests.to_yaml(manifests.external_name_services(p) + manifests.ingresses(p))
        )

        def once() -> tuple[float, Records]:
            mark = self.sb.audit_mark()
            with Timer() as t:
                self.kubectl("apply", "-f", str(path))
            return t.seconds, self.sb.audit_since(mark)

        first, first_recs = once()
        again, again_recs = once()
        return first, first_recs, again, again_recs


def run(ctx: Context) -> list[Figure]:
    scale = Scale(ctx)
    try:
        scale.setup()
        figures: list[Figure] = []
        sizes = ctx.sizes(SIZES)
        for n in sizes:
            figures += measure(scale, n, ctx.repeats, n == max(SIZES))
        figures += memory(scale, sizes[-1], 1 if ctx.smoke else MIN_BIG_REPEATS)
        return figures
    finally:
        scale.sb.down()


def measure(scale: Scale, n: int, repeats: int, big: bool) -> list[Figure]:
    """The figures of one N: times, requests, ratios, re-apply; side by side per repetition."""
    objects = 2 * n
    f = {
        k: Figure(BENCH, f"{what} N={n}: {tool}", unit)
        for k, what, tool, unit in [
            ("lt", "apply", "egress_lib", "s"),
            ("kt", "apply", "kubectl", "s"),
            ("ratio", "apply time ratio", "egress_lib / kubectl", "x"),
            ("lr", "apply requests", "egress_lib", "req"),
            ("kr", "apply requests", "kubectl", "req"),
            ("lpo", "apply requests per object", "egress_lib", "req"),
            ("kpo", "apply requests per object", "kubectl", "req"),
            ("lrt", "re-apply", "egress_lib", "s"),
            ("krt", "re-apply", "kubectl", "s"),
            ("lrr", "re-apply requests", "egress_lib", "req"),
            ("krr", "re-apply requests", "kubectl", "req"),
            ("lrw", "re-apply writes", "egress_lib", "writes"),
            ("krw", "re-apply writes", "kubectl", "writes"),
            ("lrg", "re-apply GETs per object", "egress_lib", "req"),
            ("krg", "re-apply GETs per object", "kubectl", "req"),
        ]
    }
    if n >= 10:
        f["ratio"].target, f["ratio"].meets_fn = "<= 0.5", lambda m: m <= 0.5
    f["lpo"].target, f["lpo"].meets_fn = "<= 2", lambda m: m <= 2
    f["lrw"].target, f["lrw"].meets_fn = "= 0", lambda m: m == 0
    # "Not a GET per object": fewer GETs than objects, and LISTs at most one per kind per
    # plan (04 and 05 each plan twice: once, and again in apply to check it is not stale).
    if n >= 10:  # at N=1 a GET per kind is as cheap as a LIST per kind
        f["lrg"].target, f["lrg"].meets_fn = "< 1 (not a GET per object)", lambda m: m < 1
    samples_100: tuple[Records, Records, Records, Records] | None = None
    planned = repeats
    i = 0
    while i < planned:
        with Timer() as rep:
            lt, lrec, lrt, lrrec = scale.runbook(n)
            kt, krec, krt, krrec = scale.by_kubectl(n)
        scale.cleanup()  # outside the repetition's time: it decides the repeats at N=1000
        if big and i == 0:
            # The largest N may not fit the time budget at the full count: fewer, at least 3.
            planned = max(
                min(repeats, MIN_BIG_REPEATS), min(repeats, int(BIG_BUDGET_S // rep.seconds))
            )
        for key, value in [
            ("lt", lt),
            ("kt", kt),
            ("ratio", lt / kt),
            ("lr", len(lrec)),
            ("kr", len(krec)),
            ("lpo", len(lrec) / objects),
            ("kpo", len(krec) / objects),
            ("lrt", lrt),
            ("krt", krt),
            ("lrr", len(lrrec)),
            ("krr", len(krrec)),
            ("lrw", real_writes(lrrec)),
            ("krw", real_writes(krrec)),
            ("lrg", gets(lrrec) / objects),
            ("krg", gets(krrec) / objects),
        ]:
            f[key].samples.append(float(value))
        samples_100 = samples_100 or (lrec, krec, lrrec, krrec)
        i += 1
    if big and planned < repeats:
        f["lt"].note = f"{planned} repetitions, not {repeats}: the time budget (~8 min) at N={n}"
    if samples_100 is not None:
        lrec, krec, lrrec, krrec = samples_100
        if not f["lpo"].meets:
            fixed = len(lrec) - sum(
                1 for r in lrec if "create" in kind_verb(r) and "lease" not in r["path"]
            )
            f["lpo"].note = (
                f"{len(lrec) - fixed} creates (a dry run in the plan, the create in apply) plus "
                f"{fixed} fixed per run (lock Lease, IngressClass/MseIngressConfig GETs, LISTs, "
                f"the CLB check); per kind/verb: {by_kind(lrec)}"
            )
        if not f["lrg"].meets:
            f["lrg"].note = f"re-apply per kind/verb: {by_kind(lrrec)}"
    if n == 100 and samples_100 is not None:
        lrec, krec, lrrec, krrec = samples_100
        f["lr"].note = f"by kind/verb (first repetition): {by_kind(lrec)}"
        f["kr"].note = f"by kind/verb (first repetition): {by_kind(krec)}"
        f["lrr"].note = f"by kind/verb: {by_kind(lrrec)}; LISTs {lists(lrrec)}"
        f["krr"].note = f"by kind/verb: {by_kind(krrec)}"
    return list(f.values())


_CHILD = textwrap.dedent(
    """
    import json, os, sys
    from benchmarks.scale import params
    from egress_lib import connect, steps
    def hwm():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmHWM:"))
    session = connect(params(int(sys.argv[1]), sys.argv[2]))
    imported = hwm()
    for step in (steps.services, steps.ingress):
        step.apply(session, step.plan(session))
    print(json.dumps({"imported": imported, "peak": hwm()}))
    """
)


def reset_peak(pid: int) -> bool:
    """Reset the VmHWM of ``pid`` to its current RSS (clear_refs 5): the next peak is ours."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory(scale: Scale, n: int, repeats: int) -> list[Figure]:
    """Peak RSS of the sandbox and of a runbook process applying N destinations (a child).

    The runbook's apply runs in a ``python -c`` child so that its peak is that apply's and
    not this process's (which has run the smaller sizes, kubectl's manifests and more).
    """
    sandbox = Figure(MEM, f"peak RSS during apply N={n}: sandbox", "MiB")
    runbook = Figure(MEM, f"peak RSS during apply N={n}: runbook process", "MiB")
    imports = Figure(MEM, "RSS after imports and connect: runbook process", "MiB")
    reset = True
    for _ in range(repeats):
        ns = scale.namespace("mem")
        reset = reset_peak(scale.sb.pid) and reset
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(n), ns],
            env={**scale.env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        sandbox.samples.append(scale.sb.rss_mib())
        runbook.samples.append(float(child["peak"]))
        imports.samples.append(float(child["imported"]))
        scale.cleanup()
    sandbox.note = (
        "VmHWM reset before each apply (clear_refs), so it is this apply's peak; the sandbox "
        "holds only this apply's objects"
        if reset
        else "VmHWM since the sandbox started (clear_refs refused): the largest apply is the peak"
    )
    runbook.note = "a fresh `python -c` child: imports, connect, plan and apply of 04 and 05"
    return [sandbox, runbook, imports]
