"""What the emulated cloud asks of the rest of the sandbox (the MSE controller implements it)."""

from __future__ import annotations

from typing import Protocol


class CloudHooks(Protocol):
    def addon_installing(self, cluster_id: str, name: str, version: str, config: str) -> None: ...

    def addon_installed(self, cluster_id: str, name: str, version: str, config: str) -> None: ...

    def addon_uninstalled(self, cluster_id: str, name: str) -> None: ...

    def kubeconfig(self, cluster_id: str) -> str: ...


class NoHooks:
    """Hooks that do nothing: for testing the cloud APIs on their own."""

    def addon_installing(self, cluster_id: str, name: str, version: str, config: str) -> None:
        pass

    def addon_installed(self, cluster_id: str, name: str, version: str, config: str) -> None:
        pass

    def addon_uninstalled(self, cluster_id: str, name: str) -> None:
        pass

    def kubeconfig(self, cluster_id: str) -> str:
        return "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n"
