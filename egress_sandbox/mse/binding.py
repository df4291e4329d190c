"""Which Ingresses a MseIngressConfig's gateway serves: shared by the controller and data plane.

Rules (reference section 1.2, 1.6 and 4):
- the Ingress class is the legacy annotation ``kubernetes.io/ingress.class`` if present (it
  takes precedence, as in Higress), else ``spec.ingressClassName``, else the default
  IngressClass (annotation ``ingressclass.kubernetes.io/is-default-class: "true"``);
- an IngressClass with controller ``mse.alibabacloud.com/ingress`` whose ``spec.parameters``
  names a MseIngressConfig binds its Ingresses to that config;
- a config no IngressClass points at falls back to ``spec.ingress.local.ingressClass``
  (``""`` = all Ingresses, ``nginx`` = class nginx or no class, other = that class);
- only a config in phase ``Listening`` watches Ingresses, and ``watchNamespace`` (if set)
  limits them to one namespace.
"""

from __future__ import annotations

from typing import Any

from egress_sandbox.k8s.store import Store
from egress_sandbox.k8s.types import ResourceType
from egress_sandbox.mse.crd import GROUP, KIND, MSE_INGRESS_CONFIG

Obj = dict[str, Any]
CONTROLLER_NAME = "mse.alibabacloud.com/ingress"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def _rt(store: Store, group: str, plural: str) -> ResourceType:
    rt = store.types.get(group, "v1", plural)
    assert rt is not None, f"built-in type {plural} missing"
    return rt


def ingress_type(store: Store) -> ResourceType:
    return _rt(store, "networking.k8s.io", "ingresses")


def ingress_class_type(store: Store) -> ResourceType:
    return _rt(store, "networking.k8s.io", "ingressclasses")


def service_type(store: Store) -> ResourceType:
    return _rt(store, "", "services")


def config_type_registered(store: Store) -> bool:
    return store.types.get(GROUP, MSE_INGRESS_CONFIG.version, MSE_INGRESS_CONFIG.plural) is not None


def class_of(ingress: Obj, classes: list[Obj]) -> str | None:
    """The effective class name of an Ingress, or None when it has none."""
    ann = (ingress.get("metadata", {}).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if ann:
        return str(ann)
    name = (ingress.get("spec") or {}).get("ingressClassName")
    if name:
        return str(name)
    for ic in classes:
        anns = ic.get("metadata", {}).get("annotations") or {}
        if anns.get(DEFAULT_CLASS_ANNOTATION) == "true":
            return str(ic["metadata"]["name"])
    return None


def _param_target(ic: Obj) -> str | None:
    """The MseIngressConfig an mse IngressClass points at, or None."""
    spec = ic.get("spec") or {}
    if spec.get("controller") != CONTROLLER_NAME:
        return None
    params = spec.get("parameters") or {}
    if params.get("apiGroup") == GROUP and params.get("kind") == KIND and params.get("name"):
        return str(params["name"])
    return None


class BindingView:
    """A consistent snapshot of IngressClasses and MseIngressConfigs for many lookups."""

    def __init__(self, store: Store) -> None:
        with store.lock:
            self.classes, _ = store.list(ingress_class_type(store))
            if config_type_registered(store):
                self.configs = {c["metadata"]["name"]: c for c in store.list(MSE_INGRESS_CONFIG)[0]}
            else:
                self.configs = {}
        self.class_targets = {
            ic["metadata"]["name"]: t for ic in self.classes if (t := _param_target(ic))
        }

    def config_for(self, ingress: Obj) -> Obj | None:
        """The Listening MseIngressConfig serving ``ingress``, or None."""
        cls = class_of(ingress, self.classes)
        name = self.class_targets.get(cls) if cls is not None else None
        candidates: list[Obj] = []
        if name is not None:
            if name in self.configs:
                candidates.append(self.configs[name])
        else:
            referenced = set(self.class_targets.values())
            for cname, cfg in sorted(self.configs.items()):
                if cname in referenced:
                    continue  # an IngressClass binding takes precedence over the local field
                local = (((cfg.get("spec") or {}).get("ingress") or {}).get("local")) or {}
                if "ingressClass" not in local:
                    continue  # not configured: no Ingress is watched through this field
                want = local.get("ingressClass")
                if want == "" or want == cls or (want == "nginx" and cls is None):
                    candidates.append(cfg)
        ns = ingress.get("metadata", {}).get("namespace", "")
        for cfg in candidates:
            if (cfg.get("status") or {}).get("phase") != "Listening":
                continue
            if cfg.get("metadata", {}).get("deletionTimestamp"):
                continue
            local = (((cfg.get("spec") or {}).get("ingress") or {}).get("local")) or {}
            watch_ns = local.get("watchNamespace") or ""
            if watch_ns and watch_ns != ns:
                continue
            return cfg
        return None


def bound_ingresses(store: Store, config_name: str) -> list[Obj]:
    """The Ingresses the gateway of ``config_name`` serves right now."""
    view = BindingView(store)
    items, _ = store.list(ingress_type(store))
    out = []
    for ing in items:
        cfg = view.config_for(ing)
        if cfg is not None and cfg["metadata"]["name"] == config_name:
            out.append(ing)
    return out
