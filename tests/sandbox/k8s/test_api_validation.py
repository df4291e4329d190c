"""422 Invalid with field causes, following kube-apiserver's validation rules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from k8s_helpers import WIDGET_CRD, cm, ingress, path, status_of, svc, widget
from kubernetes import client
from kubernetes.client.rest import ApiException

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.timeout(30)


def _svc_causes(cluster: Cluster, body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).create_namespaced_service("default", body)
    st = status_of(e.value)
    assert (e.value.status, st["reason"]) == (422, "Invalid")
    return [(c["reason"], c["field"]) for c in st["details"]["causes"]]


def _ing_causes(cluster: Cluster, body: dict[str, Any]) -> list[tuple[str, str]]:
    # Raw HTTP: the typed client refuses some of these bodies before sending them.
    r = cluster.http().post(
        cluster.url("/apis/networking.k8s.io/v1/namespaces/default/ingresses"), json=body
    )
    st = r.json()
    assert (r.status_code, st["reason"]) == (422, "Invalid")
    assert st["details"]["kind"] == "Ingress" and st["details"]["group"] == "networking.k8s.io"
    return [(c["reason"], c["field"]) for c in st["details"]["causes"]]


def test_service_external_name_must_be_a_dns_subdomain(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(cluster.api()).create_namespaced_service(
            "default", svc("ext", type="ExternalName", externalName="bad_name")
        )
    st = status_of(e.value)
    assert st["details"]["causes"][0]["field"] == "spec.externalName"
    assert st["message"].startswith(
        'Service "ext" is invalid: spec.externalName: Invalid value: "bad_name": '
        "a lowercase RFC 1123 subdomain"
    )


def test_service_external_name_is_required_for_external_name_type(cluster: Cluster) -> None:
    assert ("FieldValueRequired", "spec.externalName") in _svc_causes(
        cluster, svc("ext", type="ExternalName")
    )


def test_service_external_name_with_cluster_ip_is_forbidden(cluster: Cluster) -> None:
    body = svc("ext", type="ExternalName", externalName="example.com", clusterIP="10.96.0.50")
    assert ("FieldValueForbidden", "spec.clusterIPs") in _svc_causes(cluster, body)


def test_service_valid_external_name_is_accepted_without_cluster_ip(cluster: Cluster) -> None:
    ok = client.CoreV1Api(cluster.api()).create_namespaced_service(
        "default", svc("ext", type="ExternalName", externalName="example.com")
    )
    assert ok.spec.cluster_ip is None


def test_service_port_names_must_be_unique(cluster: Cluster) -> None:
    body = svc("s", ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}])
    assert _svc_causes(cluster, body) == [("FieldValueDuplicate", "spec.ports[1].name")]


def test_service_port_names_must_be_dns_labels(cluster: Cluster) -> None:
    body = svc("s", ports=[{"name": "Bad_Name", "port": 80}])
    assert _svc_causes(cluster, body) == [("FieldValueInvalid", "spec.ports[0].name")]


def test_service_ports_need_names_when_several(cluster: Cluster) -> None:
    body = svc("s", ports=[{"port": 80}, {"name": "b", "port": 81}])
    assert _svc_causes(cluster, body) == [("FieldValueRequired", "spec.ports[0].name")]


@pytest.mark.parametrize("port", [0, 65536])
def test_service_port_must_be_between_1_and_65535(cluster: Cluster, port: int) -> None:
    assert _svc_causes(cluster, svc("s", ports=[{"port": port, "targetPort": 80}])) == [
        ("FieldValueInvalid", "spec.ports[0].port")
    ]


def test_ingress_path_type_is_required(cluster: Cluster) -> None:
    p = path()
    del p["pathType"]
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].pathType")
    ]


def test_ingress_path_type_must_be_one_of_three(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as e:
        client.NetworkingV1Api(cluster.api()).create_namespaced_ingress(
            "default", ingress(path(pathType="Bogus"))
        )
    cause = status_of(e.value)["details"]["causes"][0]
    assert cause["message"] == (
        'Unsupported value: "Bogus": supported values: "Exact", "ImplementationSpecific", "Prefix"'
    )


@pytest.mark.parametrize("path_type", ["Prefix", "Exact"])
def test_ingress_prefix_and_exact_paths_must_be_absolute(cluster: Cluster, path_type: str) -> None:
    assert _ing_causes(cluster, ingress(path(path="api", pathType=path_type))) == [
        ("FieldValueInvalid", "spec.rules[0].http.paths[0].path")
    ]


def test_ingress_host_must_not_be_an_ip(cluster: Cluster) -> None:
    assert _ing_causes(cluster, ingress(path(), host="1.2.3.4")) == [
        ("FieldValueInvalid", "spec.rules[0].host")
    ]


def test_ingress_host_allows_one_leading_wildcard_only(cluster: Cluster) -> None:
    ok = ingress(path(), host="*.example.com")
    ok["metadata"]["name"] = "ok"
    client.NetworkingV1Api(cluster.api()).create_namespaced_ingress("default", ok)
    assert _ing_causes(cluster, ingress(path(), host="a.*.example.com")) == [
        ("FieldValueInvalid", "spec.rules[0].host")
    ]


def test_ingress_backend_needs_a_service_name(cluster: Cluster) -> None:
    p = path(backend={"service": {"port": {"number": 80}}})
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].backend.service.name")
    ]


def test_ingress_backend_needs_a_port_number_or_name(cluster: Cluster) -> None:
    p = path(backend={"service": {"name": "web"}})
    assert _ing_causes(cluster, ingress(p)) == [
        ("FieldValueRequired", "spec.rules[0].http.paths[0].backend")
    ]


def test_ingress_backend_port_name_is_accepted(cluster: Cluster) -> None:
    p = path(backend={"service": {"name": "web", "port": {"name": "http"}}})
    client.NetworkingV1Api(cluster.api()).create_namespaced_ingress("default", ingress(p))


# ---- custom resources ---------------------------------------------------------------------------


def _co(cluster: Cluster) -> client.CustomObjectsApi:
    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(WIDGET_CRD)
    return client.CustomObjectsApi(api)


def _cr_causes(cluster: Cluster, body: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ApiException) as e:
        _co(cluster).create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", body
        )
    assert e.value.status == 422
    causes: list[dict[str, str]] = status_of(e.value)["details"]["causes"]
    return causes


def test_custom_resource_maximum_is_enforced(cluster: Cluster) -> None:
    assert _cr_causes(cluster, widget(size=11))[0]["message"] == (
        "Invalid value: 11: spec.size in body should be less than or equal to 10"
    )


def test_custom_resource_minimum_is_enforced(cluster: Cluster) -> None:
    assert _cr_causes(cluster, widget(size=0))[0]["message"] == (
        "Invalid value: 0: spec.size in body should be greater than or equal to 1"
    )


def test_custom_resource_enum_is_enforced(cluster: Cluster) -> None:
    cause = _cr_causes(cluster, widget(color="green"))[0]
    assert (cause["reason"], cause["field"]) == ("FieldValueNotSupported", "spec.color")


def test_custom_resource_required_field_is_enforced(cluster: Cluster) -> None:
    body = widget()
    del body["spec"]["size"]
    cause = _cr_causes(cluster, body)[0]
    assert (cause["reason"], cause["field"]) == ("FieldValueRequired", "spec.size")


def test_custom_resource_unknown_fields_are_pruned(cluster: Cluster) -> None:
    out = _co(cluster).create_namespaced_custom_object(
        "example.com", "v1", "default", "widgets", widget(junk=1)
    )
    assert out["spec"] == {"size": 3}


def test_mse_ingress_config_is_validated_against_its_crd_schema(cluster: Cluster) -> None:
    from egress_sandbox.mse import crd

    api = cluster.api()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(crd.crd_manifest())
    body = {
        "apiVersion": f"{crd.GROUP}/{crd.VERSION}",
        "kind": crd.KIND,
        "metadata": {"name": "mse"},
        "spec": {"common": {"instance": {"replicas": 31, "spec": "1c1g"}}},
    }
    with pytest.raises(ApiException) as e:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            crd.GROUP, crd.VERSION, crd.PLURAL, body
        )
    causes = status_of(e.value)["details"]["causes"]
    assert [c["field"] for c in causes] == [
        "spec.common.instance.replicas",
        "spec.common.instance.spec",
    ] or sorted(c["field"] for c in causes) == [
        "spec.common.instance.replicas",
        "spec.common.instance.spec",
    ]


# ---- decoding: what kube-apiserver's Go types refuse, as a 400 before anything is stored ------

_CORE = "/api/v1/namespaces/default"


def _post_raw(
    cluster: Cluster, path: str, body: Any, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = cluster.http().post(cluster.url(path), data=data, headers={"Content-Type": content_type})
    assert r.headers["Content-Type"].startswith("application/json"), r.text[:200]
    return r.status_code, r.json()


def _lists_work(cluster: Cluster, *paths: str) -> None:
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for p in paths:
        for accept in ("application/json", table):
            r = cluster.http().get(cluster.url(p), headers={"Accept": accept})
            assert r.status_code == 200, (p, accept, r.text[:300])


def test_a_service_whose_ports_are_a_string_is_refused_and_lists_keep_working(
    cluster: Cluster,
) -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    code, st = _post_raw(cluster, f"{_CORE}/services", {**body, "spec": {"ports": "nope"}})
    assert (code, st["reason"], st["code"]) == (400, "BadRequest", 400)
    assert st["message"] == (
        'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string '
        "into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort"
    )
    r = cluster.http().get(cluster.url(f"{_CORE}/services/x"))
    assert r.status_code == 404
    _lists_work(cluster, f"{_CORE}/services", "/api/v1/services")


@pytest.mark.kubectl
def test_kubectl_get_svc_still_works_after_a_malformed_service(
    cluster: Cluster, kubectl_available: None
) -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    _post_raw(cluster, f"{_CORE}/services", {**body, "spec": {"ports": "nope"}})
    out = cluster.kubectl("get", "svc", "-A").stdout
    assert "kubernetes" in out


def _obj(kind: str, api_version: str = "v1", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": "bad"}, **fields}


def _port(**over: Any) -> dict[str, Any]:
    return {"spec": {"ports": [{"port": 80, **over}]}}


_LIMITS = {"resources": {"limits": {"cpu": "lots"}}}
_DECODE_CASES = [
    (
        "services",
        _obj("Service", **_port(port="80")),
        "string into Go struct field ServicePort.spec.ports.port of type int32",
    ),
    (
        "services",
        _obj("Service", **_port(targetPort=True)),
        "bool into Go struct field ServicePort.spec.ports.targetPort of type int32",
    ),
    (
        "services",
        _obj("Service", spec={"type": 5}),
        "number into Go struct field ServiceSpec.spec.type of type v1.ServiceType",
    ),
    (
        "services",
        {**_obj("Service"), "metadata": {"name": "bad", "labels": "x"}},
        "string into Go struct field ObjectMeta.metadata.labels of type map[string]string",
    ),
    (
        "services",
        {**_obj("Service"), "metadata": "bad"},
        "string into Go struct field Service.metadata of type v1.ObjectMeta",
    ),
    (
        "configmaps",
        _obj("ConfigMap", data="x"),
        "string into Go struct field ConfigMap.data of type map[string]string",
    ),
    (
        "configmaps",
        # The first type error wins; decoding goes on (binaryData would be the second).
        _obj("ConfigMap", data={"a": 1}, binaryData=2),
        "number into Go struct field ConfigMap.data of type string",
    ),
    (
        "events",
        _obj("Event", involvedObject="x"),
        "string into Go struct field Event.involvedObject of type v1.ObjectReference",
    ),
    (
        "pods",
        _obj("Pod", spec={"containers": "x"}),
        "string into Go struct field PodSpec.spec.containers of type []v1.Container",
    ),
    ("pods", _obj("Pod", spec="x"), "string into Go struct field Pod.spec of type v1.PodSpec"),
]
_ABORT_CASES = [
    (
        "configmaps",
        {**_obj("ConfigMap"), "metadata": {"name": "bad", "creationTimestamp": "yesterday"}},
        (
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": '
            'cannot parse "yesterday" as "2006"'
        ),
    ),
    (
        "secrets",
        _obj("Secret", data={"a": "aGV!bG8="}),
        "illegal base64 data at input byte 3",
    ),
    (
        "pods",
        _obj("Pod", spec={"containers": [{"name": "c", "image": "i", **_LIMITS}]}),
        (
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ),
    ),
]


def _refused(cluster: Cluster, plural: str, body: dict[str, Any], message: str) -> None:
    code, st = _post_raw(cluster, f"{_CORE}/{plural}", body)
    kind = body["kind"]
    assert (code, st["reason"]) == (400, "BadRequest"), st
    assert st["message"] == f'{kind} in version "v1" cannot be handled as a {kind}: {message}'
    assert cluster.http().get(cluster.url(f"{_CORE}/{plural}/bad")).status_code == 404
    _lists_work(cluster, f"{_CORE}/{plural}", f"/api/v1/{plural}")


@pytest.mark.parametrize(("plural", "body", "message"), _DECODE_CASES)
def test_a_value_of_the_wrong_json_type_is_400_and_stores_nothing(
    cluster: Cluster, plural: str, body: dict[str, Any], message: str
) -> None:
    _refused(cluster, plural, body, f"json: cannot unmarshal {message}")


@pytest.mark.parametrize(("plural", "body", "message"), _ABORT_CASES)
def test_times_quantities_and_bytes_are_parsed_as_go_parses_them(
    cluster: Cluster, plural: str, body: dict[str, Any], message: str
) -> None:
    _refused(cluster, plural, body, message)


_NET = "networking.k8s.io/v1"
_SSAR = "authorization.k8s.io/v1"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            f"/apis/{_NET}/namespaces/default/ingresses",
            _obj("Ingress", _NET, spec={"rules": "x"}),
            (
                'Ingress in version "v1" cannot be handled as a Ingress: json: cannot unmarshal '
                "string into Go struct field IngressSpec.spec.rules of type []v1.IngressRule"
            ),
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments",
            _obj("Deployment", "apps/v1", spec={"replicas": 2**31}),
            (
                'Deployment in version "v1" cannot be handled as a Deployment: json: cannot '
                "unmarshal number 2147483648 into Go struct field DeploymentSpec.spec.replicas "
                "of type int32"
            ),
        ),
        (
            "/api/v1/namespaces",
            _obj("Namespace", spec="x"),
            (
                'Namespace in version "v1" cannot be handled as a Namespace: json: cannot '
                "unmarshal string into Go struct field Namespace.spec of type v1.NamespaceSpec"
            ),
        ),
        (
            f"{_CORE}/configmaps",
            _obj("ConfigMap", 5),  # type: ignore[arg-type]
            (
                "couldn't get version/kind; json parse error: json: cannot unmarshal number "
                "into Go struct field .apiVersion of type string"
            ),
        ),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"apiVersion": _SSAR, "kind": "SelfSubjectAccessReview", "spec": 7},
            (
                'SelfSubjectAccessReview in version "v1" cannot be handled as a '
                "SelfSubjectAccessReview: json: cannot unmarshal number into Go struct field "
                "SelfSubjectAccessReview.spec of type v1.SelfSubjectAccessReviewSpec"
            ),
        ),
    ],
    ids=["ingress", "deployment", "namespace", "apiVersion", "access review"],
)
def test_other_kinds_are_decoded_too(
    cluster: Cluster, path: str, body: dict[str, Any], message: str
) -> None:
    code, st = _post_raw(cluster, path, body)
    assert (code, st["reason"], st["message"]) == (400, "BadRequest", message)


def test_a_custom_resource_with_malformed_metadata_is_400(cluster: Cluster) -> None:
    _co(cluster)
    body = widget()
    body["metadata"]["labels"] = ["a"]
    code, st = _post_raw(cluster, "/apis/example.com/v1/namespaces/default/widgets", body)
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: json: cannot unmarshal array '
        "into Go struct field ObjectMeta.metadata.labels of type map[string]string"
    )


def test_in_process_writes_are_decoded_as_well(cluster: Cluster) -> None:
    # Controllers write through the store, not HTTP: they cannot store a broken object either.
    from egress_sandbox.k8s.errors import BadRequest

    rt = cluster.store.types.get("", "v1", "services")
    assert rt is not None
    bad = {"metadata": {"name": "x", "namespace": "default"}, "spec": {"ports": "nope"}}
    with pytest.raises(BadRequest, match=r"ServiceSpec\.spec\.ports of type \[\]v1\.ServicePort"):
        cluster.store.create(rt, bad)
    assert cluster.store.try_get(rt, "default", "x") is None


def test_null_fields_are_dropped_as_the_go_struct_marshals_them(cluster: Cluster) -> None:
    body = {**cm("nulls", labels=None), "data": None, "binaryData": {"b": None}}
    code, made = _post_raw(cluster, f"{_CORE}/configmaps", body)
    assert code == 201, made
    assert "labels" not in made["metadata"] and "data" not in made
    assert made["binaryData"] == {"b": ""}


def test_a_lone_surrogate_is_stored_as_the_replacement_character(cluster: Cluster) -> None:
    data = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"},"data":{"a":"\\ud800"}}'
    code, made = _post_raw(cluster, f"{_CORE}/configmaps", data)
    assert (code, made["data"]) == (201, {"a": "\ufffd"})


def test_yaml_timestamps_stay_strings(cluster: Cluster) -> None:
    data = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: when}\ndata: {day: 2001-12-14}\n"
    code, made = _post_raw(cluster, f"{_CORE}/configmaps", data, "application/yaml")
    assert (code, made["data"]) == (201, {"day": "2001-12-14"})


_BOMB = (
    b"a: &a [x,x,x,x,x,x,x,x,x]\n"
    + b"".join(b"%c: &%c [%s]\n" % (c, c, b",".join([b"*%c" % (c - 1)] * 9)) for c in b"bcdefg")
    + b"metadata: {name: bomb}\n"
)


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n"},"data":NaN}',
            "application/json",
            "invalid character 'N' looking for beginning of value",
        ),
        (b'{"a":' * 200 + b"1" + b"}" * 200, "application/json", "exceeded max depth"),
        (b"[" * 100000 + b"]" * 100000, "application/json", "exceeded max depth"),
        (
            _BOMB,
            "application/yaml",
            "error converting YAML to JSON: yaml: document contains excessive aliasing",
        ),
        (b"a: &a [*a]\n", "application/yaml", "error converting YAML to JSON: recursive alias"),
    ],
    ids=["NaN", "deep object", "deep array", "alias bomb", "recursive alias"],
)
def test_what_gos_decoders_refuse_is_refused(
    cluster: Cluster, data: bytes, content_type: str, message: str
) -> None:
    code, st = _post_raw(cluster, f"{_CORE}/configmaps", data, content_type)
    assert (code, st["reason"]) == (400, "BadRequest")
    assert st["message"] == f"couldn't get version/kind; json parse error: {message}"


def test_an_integer_option_that_is_not_one_is_400(cluster: Cluster) -> None:
    r = cluster.http().get(cluster.url(f"{_CORE}/configmaps"), params={"limit": "abc"})
    assert (r.status_code, r.json()["message"]) == (
        400,
        'strconv.ParseInt: parsing "abc": invalid syntax',
    )


# ---- ConfigMaps, Secrets, Events: the rules of their validation ------------------------------


def test_config_map_keys_must_be_config_keys(cluster: Cluster) -> None:
    code, st = _post_raw(cluster, f"{_CORE}/configmaps", {**cm("k"), "data": {"bad key": "v"}})
    assert (code, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "bad key": a valid config key must consist of '
            "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
            "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            "field": "data[bad key]",
        }
    ]


def test_an_immutable_config_map_keeps_its_data(cluster: Cluster) -> None:
    core = client.CoreV1Api(cluster.api())
    core.create_namespaced_config_map(
        "default", {**cm("frozen"), "data": {"a": "1"}, "immutable": True}
    )
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("frozen", "default", {"data": {"a": "2"}})
    causes = status_of(e.value)["details"]["causes"]
    assert [(c["reason"], c["field"]) for c in causes] == [("FieldValueForbidden", "data")]
    assert core.read_namespaced_config_map("frozen", "default").data == {"a": "1"}


def test_a_tls_secret_needs_its_certificate_and_key(cluster: Cluster) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "tls"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "eA=="},
    }
    code, st = _post_raw(cluster, f"{_CORE}/secrets", body)
    assert (code, st["reason"]) == (422, "Invalid")
    assert [(c["reason"], c["field"]) for c in st["details"]["causes"]] == [
        ("FieldValueRequired", "data[tls.key]")
    ]


def test_string_data_is_written_into_data(cluster: Cluster) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sd"},
        "stringData": {"a": "hello"},
    }
    code, made = _post_raw(cluster, f"{_CORE}/secrets", body)
    assert code == 201, made
    assert (made["data"], made["type"], "stringData" in made) == (
        {"a": "aGVsbG8="},
        "Opaque",
        False,
    )


def test_an_event_lives_in_its_objects_namespace(cluster: Cluster) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "ev"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "kube-system"},
    }
    code, st = _post_raw(cluster, f"{_CORE}/events", body)
    assert (code, st["reason"]) == (422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "involvedObject.namespace"
    assert st["details"]["causes"][0]["message"] == (
        'Invalid value: "kube-system": does not match event.namespace'
    )
