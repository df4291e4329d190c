"""The sandbox data plane: gateway proxies on CLB addresses, the origin, the pod network."""

from egress_sandbox.dataplane.plane import DataPlane

__all__ = ["DataPlane"]
