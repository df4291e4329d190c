"""`egress-runbook check` and step 00 read what the policies name: mirror Services, TLS Secrets.

One sandbox (block 42) for the module. The sandbox's world seeds egress-audit/audit:8080 and the
Secrets default/egress-client-cert and default/payments-gateway-tls; where it does not (yet),
the test creates them with the kubernetes client, as an operator would.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from egress_lib import cli, connect, load_parameters
from egress_lib.runner import EXIT_OK, EXIT_USAGE
from egress_lib.steps import checks_references, preflight

if TYPE_CHECKING:
    from egress_sandbox.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "parameters" / "sandbox-policies.yaml"
BLOCK = 42


def _pem_pair(cn: str) -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    crt = cert.public_bytes(serialization.Encoding.PEM)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "tls.crt": base64.b64encode(crt).decode(),
        "tls.key": base64.b64encode(pem_key).decode(),
    }


def _ensure(create: Any, *args: Any) -> None:
    try:
        create(*args)
    except ApiException as e:
        if e.status != 409:  # already there: the sandbox seeded it
            raise


def _seed(core: k8s.CoreV1Api) -> None:
    _ensure(core.create_namespace, {"metadata": {"name": "egress-audit"}})
    _ensure(
        core.create_namespaced_service,
        "egress-audit",
        {
            "metadata": {"name": "audit"},
            "spec": {"selector": {"app": "audit"}, "ports": [{"port": 8080, "targetPort": 8080}]},
        },
    )
    for name, cn in (
        ("egress-client-cert", "egress-gateway"),
        ("payments-gateway-tls", "api.payments.example"),
    ):
        _ensure(
            core.create_namespaced_secret,
            "default",
            {"metadata": {"name": name}, "type": "kubernetes.io/tls", "data": _pem_pair(cn)},
        )
    _ensure(
        core.create_namespaced_secret,
        "default",
        {"metadata": {"name": "not-tls"}, "type": "Opaque", "data": {"a": "Yg=="}},
    )


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    from sandbox_clients import kube
    from sandbox_env import sandbox_home

    with sandbox_home(tmp_path_factory.mktemp("policy-refs"), BLOCK) as sandbox:
        api = kube(sandbox)
        try:
            _seed(k8s.CoreV1Api(api))
        finally:
            api.close()
        yield sandbox


def _write(tmp_path: Path, edit: dict[str, Any]) -> Path:
    """sandbox-policies.yaml with ``edit`` laid over destinations[0].policies."""
    data = yaml.safe_load(POLICIES.read_text(encoding="utf-8"))
    data["destinations"][0]["policies"].update(edit)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _check(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = cli.main(["check", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_every_reference_present_is_valid(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _check(POLICIES, capsys)
    assert code == EXIT_OK, err
    assert "sandbox-policies.yaml: valid" in out
    assert (
        "✓ destinations[0].policies.mirror.service: Service egress-audit/audit has port 8080"
        in (out)
    )
    assert "✓ destinations[0].policies.upstream_tls.client_certificate: Secret " in out
    assert "default/payments-gateway-tls is of type kubernetes.io/tls" in out
    assert "BEGIN" not in out + err  # no key material, ever


def test_a_mirror_target_that_does_not_exist_names_the_key(
    box: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"mirror": {"service": "egress-audit/nothere:8080"}})
    code, out, err = _check(path, capsys)
    assert code == EXIT_USAGE
    assert "valid" not in out
    assert (
        "destinations[0].policies.mirror.service: 'egress-audit/nothere:8080': Service "
        "egress-audit/nothere not found; expected an existing Service in namespace "
        "egress-audit with port 8080"
    ) in err


def test_a_mirror_target_in_a_missing_namespace_or_without_the_port(
    box: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"mirror": {"service": "nowhere/audit:8080"}})
    code, _, err = _check(path, capsys)
    assert code == EXIT_USAGE
    assert "Service nowhere/audit not found (namespace nowhere does not exist)" in err
    path = _write(tmp_path, {"mirror": {"service": "egress-audit/audit:9090"}})
    code, _, err = _check(path, capsys)
    assert code == EXIT_USAGE
    assert "Service egress-audit/audit has no port 9090 (its ports: 8080)" in err


def test_secrets_that_do_not_exist_or_are_not_tls(
    box: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        {
            "upstream_tls": {"client_certificate": "no-such-cert"},
            "tls_offload": {"certificate": "not-tls"},
        },
    )
    code, _, err = _check(path, capsys)
    assert code == EXIT_USAGE
    assert "2 invalid parameters" in err
    assert (
        "destinations[0].policies.upstream_tls.client_certificate: 'no-such-cert': Secret "
        "default/no-such-cert not found; expected an existing Secret of type kubernetes.io/tls "
        "in namespace default"
    ) in err
    assert (
        "destinations[0].policies.tls_offload.certificate: 'not-tls': Secret default/not-tls "
        "is of type Opaque; expected an existing Secret of type kubernetes.io/tls"
    ) in err


def test_offline_does_not_read_the_cluster(
    box: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {"mirror": {"service": "egress-audit/nothere:8080"}})
    code, out, _ = _check(path, capsys, "--offline")
    assert code == EXIT_OK
    assert "valid (cluster sandbox-policies, target sandbox, offline)" in out


def test_an_unreachable_cluster_is_a_note(
    box: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EGRESS_SANDBOX_HOME", str(tmp_path / "no-sandbox"))
    code, out, _ = _check(POLICIES, capsys)
    assert code == EXIT_OK
    assert "valid" in out
    assert "note: cannot reach the cluster (the sandbox is not running" in out
    assert "were not checked (--offline skips this step)" in out


def test_preflight_has_a_row_per_reference(box: Sandbox, tmp_path: Path) -> None:
    params = load_parameters(_write(tmp_path, {"mirror": {"service": "egress-audit/nothere"}}))
    session = connect(params)
    try:
        rows = {c.name: c for c in checks_references.checks(session)}
        all_rows = {c.name for c in preflight.checks(session)}
    finally:
        session.close()
    mirror = rows["destinations[0].policies.mirror.service (Service egress-audit/nothere)"]
    assert mirror.blocking
    assert mirror.detail == (
        "Service egress-audit/nothere not found: the mirror target of payments"
    )
    assert "create Service egress-audit/nothere, or change" in mirror.fix
    cert = rows[
        "destinations[0].policies.upstream_tls.client_certificate (Secret "
        "default/egress-client-cert)"
    ]
    assert cert.ok and not cert.blocking
    assert set(rows) <= all_rows  # 00's check table carries them, so 00 fails before 01


def test_step_04_creates_the_endpoints_services_and_deletes_them_once_dropped(
    box: Sandbox,
) -> None:
    from egress_lib import steps

    with_backup = load_parameters(POLICIES).model_copy(update={"approve": True})
    session = connect(with_backup)
    try:
        plan = steps.services.plan(session)
        actions = {c.name: c.action for c in plan.changes}
        assert actions == dict.fromkeys(("payments", "maps", "maps-backup", "packages"), "create")
        steps.services.apply(session, plan)
        backup = session.core.read_namespaced_service("maps-backup", "default")
        assert backup.spec.external_name == "api.maps-backup.example"
        assert backup.metadata.labels["app.kubernetes.io/managed-by"] == "egress-runbook"
        down = {c.name: c.action for c in steps.teardown.plan(session).changes}
        assert down["maps-backup"] == "delete"
    finally:
        session.close()

    data = yaml.safe_load(POLICIES.read_text(encoding="utf-8"))
    del data["destinations"][1]["policies"]["load_balancing"]
    data["approve"] = True
    session = connect(load_parameters(data))
    try:
        plan = steps.services.plan(session)
        dropped = [c for c in plan.changes if c.name == "maps-backup"]
        assert [(c.action, c.detail) for c in dropped] == [
            ("delete", "ours, but no destination names it any more")
        ]
        steps.services.apply(session, plan)
        assert [
            s.metadata.name
            for s in session.core.list_namespaced_service("default").items
            if s.metadata.name.startswith("maps")
        ] == ["maps"]
        # Leave the module's sandbox as it was: no Services of ours.
        for name in ("payments", "maps", "packages"):
            session.core.delete_namespaced_service(name, "default")
    finally:
        session.close()


def test_step_02_clears_a_gateway_wide_list_dropped_from_the_parameters(box: Sandbox) -> None:
    from sandbox_clients import install_mse_addon

    from egress_lib import steps

    install_mse_addon(box)
    data = yaml.safe_load(POLICIES.read_text(encoding="utf-8"))
    data["approve"] = True
    data["adopt"] = ["IngressClass/mse"]  # the add-on made one; step 01 is not run here
    data["gateway"]["ip_access_control"] = {"allow": ["10.0.0.0/8"], "deny": ["192.0.2.0/24"]}
    session = connect(load_parameters(data))
    try:
        steps.gateway.apply(session)
        live = session.custom.get_cluster_custom_object(
            "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs", "egress-gateway"
        )
        assert live["spec"]["global"]["ipAccessControl"] == {
            "whitelist": ["10.0.0.0/8"],
            "blacklist": ["192.0.2.0/24"],
        }
    finally:
        session.close()
    data["gateway"]["ip_access_control"] = {"deny": ["192.0.2.0/24"]}
    session = connect(load_parameters(data))
    try:
        plan = steps.gateway.plan(session)
        update = next(
            c for c in plan.changes if c.kind == "MseIngressConfig" and c.action != "wait"
        )
        assert update.action == "update"
        assert "whitelist" in update.detail
        steps.gateway.apply(session, plan)
        live = session.custom.get_cluster_custom_object(
            "mse.alibabacloud.com", "v1alpha1", "mseingressconfigs", "egress-gateway"
        )
        assert live["spec"]["global"]["ipAccessControl"] == {
            "whitelist": [],
            "blacklist": ["192.0.2.0/24"],
        }
        again = [
            c
            for c in steps.gateway.plan(session).changes
            if c.kind == "MseIngressConfig" and c.action != "wait"
        ]
        assert [c.action for c in again] == ["unchanged"]
    finally:
        session.close()


def test_a_policy_dropped_from_the_parameters_leaves_the_ingress(box: Sandbox) -> None:
    from egress_lib import kube, manifests

    data = yaml.safe_load(POLICIES.read_text(encoding="utf-8"))
    data["approve"] = True
    session = connect(load_parameters(data))
    try:
        (payments,) = [
            i for i in manifests.ingresses(session.params) if i["metadata"]["name"] == "payments"
        ]
        kube.apply_change(session, kube.plan_object(session, payments))
    finally:
        session.close()
    del data["destinations"][0]["policies"]["rate_limit"]
    del data["destinations"][0]["policies"]["tls_offload"]
    session = connect(load_parameters(data))
    try:
        (payments,) = [
            i for i in manifests.ingresses(session.params) if i["metadata"]["name"] == "payments"
        ]
        change = kube.plan_object(session, payments)
        assert change.action == "update"
        # What the plan shows is what goes: the rate limit's annotations and spec.tls.
        assert "mse.ingress.kubernetes.io/route-limit-rps (removed)" in change.detail
        removed = [line for line in change.body.splitlines() if line.startswith("-")]
        assert any("route-limit-rps" in line for line in removed)
        assert "-  tls:" in removed
        kube.apply_change(session, change)
        live = session.networking.read_namespaced_ingress("payments", "default")
        annotations = live.metadata.annotations or {}
        assert not any("route-limit" in k for k in annotations)
        assert "nginx.ingress.kubernetes.io/whitelist-source-range" in annotations
        assert not live.spec.tls
        assert kube.plan_object(session, payments).action == "unchanged"
        session.networking.delete_namespaced_ingress("payments", "default")
    finally:
        session.close()
