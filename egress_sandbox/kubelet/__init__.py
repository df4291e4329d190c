"""The sandbox node: runs curl pods as subprocesses confined to the pod network."""

from egress_sandbox.kubelet.kubelet import Kubelet

__all__ = ["Kubelet"]
