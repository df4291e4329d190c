"""RAM: the RAM action that authorizes each Alibaba Cloud OpenAPI action egress_lib calls.

``policies/ram-policy.json`` grants exactly the RAM actions of :data:`CALLED` (a unit test
checks both directions, and that :data:`CALLED` lists every call site), and the README's RAM
table is generated from that file by ``scripts/ram_table.py``.
"""

from __future__ import annotations

# Most RAM actions are "<product>:<API action>"; these are not. Each is the "Authorization
# information" of the API's help page:
# DescribeClusterAddonsVersion: https://www.alibabacloud.com/help/doc-detail/197434.htm
RENAMED: dict[tuple[str, str], str] = {
    ("cs", "DescribeClusterAddonsVersion"): "cs:Queryk8sComponentsUpdateVersion",
}

# Every (product, API action) egress_lib can call, through egress_lib.cloud.call/call_with_id.
CALLED: frozenset[tuple[str, str]] = frozenset(
    {
        ("cs", "DescribeClusterDetail"),
        ("cs", "DescribeClusterAddonsVersion"),
        ("cs", "ListAddons"),
        ("cs", "GetClusterAddonInstance"),
        ("cs", "InstallClusterAddons"),
        ("cs", "DescribeTaskInfo"),
        ("cs", "DescribeClusterNodePools"),
        ("vpc", "DescribeVpcs"),
        ("vpc", "DescribeVSwitches"),
        ("vpc", "DescribeNatGateways"),
        ("vpc", "DescribeEipAddresses"),
        ("vpc", "DescribeSnatTableEntries"),
        ("vpc", "CreateSnatEntry"),
        ("vpc", "DeleteSnatEntry"),
        ("vpc", "DescribeRouteTableList"),
        ("vpc", "DescribeRouteEntryList"),
        ("slb", "DescribeLoadBalancers"),
        ("mse", "ListGateway"),
        ("mse", "ListGatewaySlb"),
        ("ram", "GetRole"),
    }
)


def ram_action(product: str, action: str) -> str:
    """The RAM action that authorizes ``product``'s API ``action``, e.g. ``vpc:CreateSnatEntry``."""
    return RENAMED.get((product, action), f"{product}:{action}")


def required() -> frozenset[str]:
    """The RAM actions of everything egress_lib can call."""
    return frozenset(ram_action(product, action) for product, action in CALLED)
