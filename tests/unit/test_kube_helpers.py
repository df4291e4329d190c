"""Pure helpers of kube.py, verify.py and show.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from egress_lib import kube
from egress_lib.parameters import Destination
from egress_lib.pod_probe import parse_transfers, write_out
from egress_lib.show import yaml_block
from egress_lib.steps import verify
from egress_lib.steps.ingress import ClbAddress


def test_diff_ignores_server_added_fields() -> None:
    desired = {"spec": {"type": "ExternalName", "ports": [{"port": 80}]}}
    actual = {
        "spec": {"type": "ExternalName", "ports": [{"port": 80, "x": 1}], "sessionAffinity": "None"}
    }
    assert kube.diff(desired, actual) == []


def test_diff_reports_paths() -> None:
    desired = {"spec": {"replicas": 3, "vSwitches": ["a"], "name": "g"}}
    actual = {"spec": {"replicas": 2, "vSwitches": ["a", "b"]}}
    assert kube.diff(desired, actual) == [
        "spec.replicas: 2 -> 3",
        "spec.vSwitches",
        "spec.name (missing)",
    ]


def test_merged_keeps_server_fields_and_resource_version() -> None:
    current = {
        "metadata": {"name": "a", "resourceVersion": "7", "managedFields": [{}], "uid": "u"},
        "spec": {"clusterIP": "None", "externalName": "old"},
    }
    body = kube._merged(current, {"metadata": {"name": "a"}, "spec": {"externalName": "new"}})
    assert body["metadata"] == {"name": "a", "resourceVersion": "7", "uid": "u"}
    assert body["spec"] == {"clusterIP": "None", "externalName": "new"}


def test_strip_server_fields() -> None:
    obj = {
        "metadata": {
            "name": "a",
            "managedFields": [],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        }
    }
    assert kube.strip_server_fields(obj) == {"metadata": {"name": "a"}}
    assert "managedFields" in obj["metadata"]  # the input is not modified


def test_yaml_block_renders() -> None:
    block = yaml_block([{"kind": "Service", "metadata": {"name": "a", "managedFields": []}}])
    assert "managedFields" not in str(block)
    assert block._repr_markdown_().startswith("```yaml\nkind: Service")


DEST = Destination(
    name="aliyun-svc-external", host="www.aliyun.com", port=80, path="/product/aliware/mse"
)


def test_curl_args_follow_the_seed() -> None:
    args = verify.curl_args(DEST, ClbAddress("mse-ingress", "127.16.2.5"), 60)
    assert args[-3:] == [
        "--connect-to",
        "www.aliyun.com:80:127.16.2.5:80",
        "http://www.aliyun.com/product/aliware/mse",
    ]


def test_curl_args_take_a_host_name_status() -> None:
    nlb = ClbAddress("mse-ingress", None, 80, "nlb-x.cn-hangzhou.nlb.aliyuncsslb.com")
    args = verify.curl_args(DEST, nlb, 60)
    assert "www.aliyun.com:80:nlb-x.cn-hangzhou.nlb.aliyuncsslb.com:80" in args
    # The body goes to stdout (the source address is read from it), then the tagged trailer.
    assert args[:3] == ["-s", "-w", write_out("aliyun-svc-external")]


def test_curl_args_non_default_port() -> None:
    args = verify.curl_args(DEST, ClbAddress("mse-ingress", "127.16.2.5", 40123), 5)
    assert "www.aliyun.com:40123:127.16.2.5:40123" in args
    assert args[-1] == "http://www.aliyun.com:40123/product/aliware/mse"


def test_pod_name_fits_63() -> None:
    # The run's ID is in the name, so two runs at once never share a pod.
    session: Any = SimpleNamespace(short_run_id="ab12cd")
    assert verify.pod_name(session, DEST) == "egress-verify-ab12cd-aliyun-svc-external"
    assert verify.direct_pod_name(session) == "egress-verify-ab12cd-direct"
    long = Destination(name="a" * 60, host="x.example.com", port=80)
    name = verify.pod_name(session, long)
    assert len(name) <= 63 and name.startswith("egress-verify-")
    assert name != verify.pod_name(session, Destination(name="a" * 59 + "b", host="x.e", port=80))


def test_parse_the_trailer() -> None:
    log = "<html/>\n@egress-probe tag=a code=200 time=0.123 connect=0.01 remote=127.16.2.5 exit=0 "
    (t,) = parse_transfers(log + "error=\n")
    assert (t.status, t.seconds, t.remote, t.body) == (200, 0.123, "127.16.2.5", "<html/>")
    failed = "@egress-probe tag=a code=000 time=0.001 connect=0 remote= exit=7 error=Failed\n"
    assert parse_transfers("curl: (7) Failed\n" + failed)[0].status is None
    assert parse_transfers("") == []
