"""CS 2015-12-15 (ROA) actions: routes, request bodies and the snake_case response shapes.

The shapes are the CS API reference's (docs/aliyun-emulation.md lists the pages).

Choices [UNCONFIRMED]: InstallClusterAddons answers ``{cluster_id, request_id, task_id}`` (the
SDK model; old docs show an empty 200) and requires ``version`` (the SDK marks it required);
``config``, when given, must be a JSON-encoded object string. Body/query errors are 400
InvalidParameter. ``master_url`` keys are ``api_server_endpoint``/``intranet_api_server_endpoint``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from egress_sandbox.aliyun.common import errors
from egress_sandbox.aliyun.common.dispatch import Call, Handler, RoaRegistry
from egress_sandbox.aliyun.cs.models import AddonRequest, CsModel
from egress_sandbox.aliyun.records import AVAILABLE_ADDONS, Addon, Cluster, NodePool, Task

VERSION = "2015-12-15"

RULES: list[tuple[str, str, str]] = [
    ("GET", "/clusters/<cluster_id>", "DescribeClusterDetail"),
    ("GET", "/clusters/<cluster_id>/nodepools", "DescribeClusterNodePools"),
    ("GET", "/clusters/<cluster_id>/components/version", "DescribeClusterAddonsVersion"),
    ("GET", "/clusters/<cluster_id>/addon_instances", "ListClusterAddonInstances"),
    ("GET", "/clusters/<cluster_id>/addon_instances/<name>", "GetClusterAddonInstance"),
    ("GET", "/clusters/<cluster_id>/components/<name>/instance", "DescribeClusterAddonInstance"),
    ("POST", "/clusters/<cluster_id>/components/install", "InstallClusterAddons"),
    ("POST", "/clusters/<cluster_id>/components/uninstall", "UnInstallClusterAddons"),
    ("GET", "/tasks/<task_id>", "DescribeTaskInfo"),
    ("GET", "/k8s/<cluster_id>/user_config", "DescribeClusterUserKubeconfig"),
    ("GET", "/addons", "ListAddons"),
]

_CATEGORY = {"mse-ingress-controller": "network", "nginx-ingress-controller": "network"}


def _json_array(body: bytes) -> list[dict[str, Any]]:
    try:
        items = json.loads(body or b"null")
    except ValueError:
        raise errors.InvalidParameter("The request body is not valid JSON.") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise errors.InvalidParameter("The request body must be a non-empty JSON array of objects.")
    return items


def _string(item: dict[str, Any], key: str, *, required: bool) -> str:
    value = item.get(key)
    if value is None or value == "":
        if required:
            raise errors.InvalidParameter(f"The parameter {key} is required.")
        return ""
    if not isinstance(value, str):
        raise errors.InvalidParameter(f"The parameter {key} must be a string.")
    return value


class CsResponses:
    def __init__(self, model: CsModel) -> None:
        self.model = model

    def registry(self) -> RoaRegistry:
        handlers: dict[str, Handler] = {
            "DescribeClusterDetail": self.describe_cluster_detail,
            "DescribeClusterNodePools": self.describe_cluster_node_pools,
            "DescribeClusterAddonsVersion": self.describe_cluster_addons_version,
            "ListClusterAddonInstances": self.list_cluster_addon_instances,
            "GetClusterAddonInstance": self.get_cluster_addon_instance,
            "DescribeClusterAddonInstance": self.describe_cluster_addon_instance,
            "InstallClusterAddons": self.install_cluster_addons,
            "UnInstallClusterAddons": self.un_install_cluster_addons,
            "DescribeTaskInfo": self.describe_task_info,
            "DescribeClusterUserKubeconfig": self.describe_cluster_user_kubeconfig,
            "ListAddons": self.list_addons,
        }
        return RoaRegistry("cs", VERSION, RULES, handlers)

    # --- clusters -------------------------------------------------------------------------

    @staticmethod
    def _detail(c: Cluster) -> dict[str, Any]:
        return {
            "cluster_id": c.cluster_id,
            "name": c.name,
            "cluster_type": c.cluster_type,
            "profile": "Default",
            "cluster_spec": c.cluster_spec,
            "region_id": c.region_id,
            "zone_id": "",
            "vpc_id": c.vpc_id,
            "vswitch_ids": list(c.vswitch_ids),
            "vswitch_id": ",".join(c.vswitch_ids),
            "security_group_id": c.security_group_id,
            "state": c.state,
            "current_version": c.current_version,
            "init_version": c.current_version,
            "next_version": "",
            "master_url": json.dumps(
                {
                    "api_server_endpoint": c.api_server_endpoint,
                    "intranet_api_server_endpoint": c.api_server_endpoint,
                }
            ),
            "container_cidr": "172.20.0.0/16",
            "service_cidr": "172.21.0.0/20",
            "subnet_cidr": "172.20.0.0/16",
            "node_cidr_mask": "26",
            "network_mode": "vpc",
            "proxy_mode": "ipvs",
            "ip_stack": "ipv4",
            "size": 2,
            "created": c.created,
            "updated": c.created,
            "deletion_protection": False,
            "resource_group_id": "rg-acfmsandbox00000",
            "tags": [],
            "parameters": {},
            "meta_data": "{}",
            "timezone": "Asia/Shanghai",
            "cluster_domain": "cluster.local",
            "docker_version": "",
            "external_loadbalancer_id": "",
            "extra_sans": [],
        }

    def describe_cluster_detail(self, call: Call) -> dict[str, Any]:
        return self._detail(self.model.cluster(call.path_args["cluster_id"]))

    @staticmethod
    def _node_pool(pool: NodePool, c: Cluster) -> dict[str, Any]:
        # The fields of the SDK model DescribeClusterNodePoolsResponseBodyNodepools that a
        # caller reads; the nodes' vSwitches are scaling_group.vswitch_ids.
        return {
            "nodepool_info": {
                "nodepool_id": pool.nodepool_id,
                "name": pool.name,
                "is_default": pool.is_default,
                "type": "ess",
                "region_id": c.region_id,
                "resource_group_id": "rg-acfmsandbox00000",
                "created": pool.created,
                "updated": pool.created,
            },
            "scaling_group": {
                "vswitch_ids": list(pool.vswitch_ids),
                "security_group_id": c.security_group_id,
                "desired_size": pool.size,
                "instance_types": ["ecs.g7.xlarge"],
                "instance_charge_type": "PostPaid",
                "image_type": "AliyunLinux3",
                "multi_az_policy": "BALANCE",
                "scaling_group_id": "asg-" + pool.nodepool_id[2:22],
                "system_disk_category": "cloud_essd",
                "system_disk_size": 120,
                "tags": [],
            },
            "status": {
                "state": pool.state,
                "total_nodes": pool.size,
                "healthy_nodes": pool.size,
                "serving_nodes": pool.size,
                "failed_nodes": 0,
                "initial_nodes": 0,
                "offline_nodes": 0,
                "removing_nodes": 0,
            },
            "kubernetes_config": {"runtime": "containerd", "runtime_version": "1.6.28"},
            "management": {"enable": True, "auto_repair": True},
            "max_nodes": 0,
        }

    def describe_cluster_node_pools(self, call: Call) -> dict[str, Any]:
        cluster = self.model.cluster(call.path_args["cluster_id"])
        pools = self.model.node_pools(cluster.cluster_id, call.params.get("NodepoolName"))
        return {"nodepools": [self._node_pool(p, cluster) for p in pools]}

    def describe_cluster_user_kubeconfig(self, call: Call) -> dict[str, Any]:
        cluster_id = call.path_args["cluster_id"]
        call.params.bool("PrivateIpAddress")
        minutes = call.params.int("TemporaryDurationMinutes")
        if minutes is not None and not 15 <= minutes <= 4320:
            raise errors.InvalidParameter("TemporaryDurationMinutes must be between 15 and 4320.")
        self.model.cluster(cluster_id)
        # Default validity is 3 years; a temporary kubeconfig lives the requested minutes.
        lifetime = dt.timedelta(minutes=minutes) if minutes else dt.timedelta(days=3 * 365)
        expiration = dt.datetime.now(dt.timezone.utc) + lifetime
        return {
            "config": self.model.hooks.kubeconfig(cluster_id),
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    # --- add-ons --------------------------------------------------------------------------

    def describe_cluster_addons_version(self, call: Call) -> dict[str, Any]:
        cluster = self.model.cluster(call.path_args["cluster_id"])
        out: dict[str, Any] = {}
        for name, available in AVAILABLE_ADDONS.items():
            installed = cluster.addons.get(name)
            version = installed.version if installed else ""
            out[name] = {
                "component_name": name,
                "version": version,
                "next_version": available,
                "changed": "",
                "can_upgrade": bool(installed) and version != available,
                "policy": "",
                "ready_to_upgrade": "",
                "exist": installed is not None,
                "required": False,
                "message": "",
                "value": installed.config if installed else "",
            }
        return out

    @staticmethod
    def _instance(addon: Addon) -> dict[str, Any]:
        return {"name": addon.name, "version": addon.version, "state": addon.state}

    def list_cluster_addon_instances(self, call: Call) -> dict[str, Any]:
        cluster = self.model.cluster(call.path_args["cluster_id"])
        return {"addons": [self._instance(a) for a in cluster.addons.values()]}

    def get_cluster_addon_instance(self, call: Call) -> dict[str, Any]:
        addon = self.model.addon(call.path_args["cluster_id"], call.path_args["name"])
        return {
            **self._instance(addon),
            "config": addon.config,
            "logging": {"capable": False, "enabled": False, "log_project": "", "logstore": ""},
        }

    def describe_cluster_addon_instance(self, call: Call) -> dict[str, Any]:
        addon = self.model.addon(call.path_args["cluster_id"], call.path_args["name"])
        return {**self._instance(addon), "config": addon.config}

    def install_cluster_addons(self, call: Call) -> dict[str, Any]:
        cluster_id = call.path_args["cluster_id"]
        requests = []
        for item in _json_array(call.body):
            config = _string(item, "config", required=False)
            if config:
                try:
                    parsed = json.loads(config)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    raise errors.InvalidParameter("config must be a JSON-encoded object string.")
            requests.append(
                AddonRequest(
                    _string(item, "name", required=True),
                    _string(item, "version", required=True),
                    config,
                )
            )
        if len({r.name for r in requests}) != len(requests):
            raise errors.InvalidParameter("An addon is listed more than once.")
        task_id = self.model.install(cluster_id, requests)
        return {"cluster_id": cluster_id, "request_id": call.request_id, "task_id": task_id}

    def un_install_cluster_addons(self, call: Call) -> dict[str, Any]:
        cluster_id = call.path_args["cluster_id"]
        items = _json_array(call.body)
        names = [_string(item, "name", required=True) for item in items]
        for item in items:
            if not isinstance(item.get("cleanup_cloud_resources", False), bool):
                raise errors.InvalidParameter("cleanup_cloud_resources must be a boolean.")
        if len(set(names)) != len(names):
            raise errors.InvalidParameter("An addon is listed more than once.")
        task_id = self.model.uninstall(cluster_id, names)
        return {"cluster_id": cluster_id, "request_id": call.request_id, "task_id": task_id}

    def list_addons(self, call: Call) -> dict[str, Any]:
        cluster_id = call.params.get("cluster_id")
        if cluster_id is not None:
            self.model.cluster(cluster_id)
        return {
            "addons": [
                {
                    "name": name,
                    "version": version,
                    "category": _CATEGORY.get(name, "monitor"),
                    "config_schema": "{}",
                    "install_by_default": False,
                    "managed": False,
                    "supported_actions": ["install", "upgrade", "uninstall"],
                    "architecture": ["amd64", "arm64"],
                }
                for name, version in AVAILABLE_ADDONS.items()
            ]
        }

    # --- tasks ----------------------------------------------------------------------------

    @staticmethod
    def _task(task: Task) -> dict[str, Any]:
        return {
            "task_id": task.task_id,
            "task_type": task.task_type,
            "state": task.state,
            "cluster_id": task.cluster_id,
            "created": task.created,
            "updated": task.updated,
            "current_stage": "",
            "error": dict(task.error) if task.error else None,
            "events": [],
            "stages": [],
            "outputs": [],
            "parameters": {},
            "target": {"id": task.cluster_id, "type": "cluster"},
            "task_result": [],
        }

    def describe_task_info(self, call: Call) -> dict[str, Any]:
        return self._task(self.model.task(call.path_args["task_id"]))
