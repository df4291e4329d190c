"""What the operator should do next, per kind of failure: the texts errors carry as ``remedy``.

Plain functions of the facts an error has (codes, names, parameters), so that each text is
tested on its own and :mod:`egress_lib.errors` stays a tree of classes. Nothing here may quote
a secret: credential sources are described by where they come from and a masked ID.
"""

from __future__ import annotations

from collections.abc import Sequence

from egress_lib.ram import ram_action

SAFE_TO_RERUN = (
    "Re-running the step is safe: every step is idempotent, and its plan shows what is "
    "already done."
)

# Flow control and "try later" answers: codes egress_lib.retry retries (a unit test keeps
# the two in step); any other Throttling.* code and any 5xx count too.
THROTTLING_CODES = frozenset(
    {"ServiceUnavailable", "Throttling", "Throttling.User", "Throttling.Api", "InternalError"}
)
# The caller is not who it claims to be, or its credentials are stale.
CREDENTIAL_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeySecret",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken",
    "InvalidBearerToken",
)
CREDENTIAL_WHY = {
    "InvalidAccessKeyId": "the AccessKey ID is not known (deleted, disabled, or of another "
    "account or site)",
    "InvalidAccessKeySecret": "the AccessKey secret is wrong",
    "SignatureDoesNotMatch": "the AccessKey secret does not match its ID",
    "IncompleteSignature": "the request was not signed as the API expects",
    "InvalidSecurityToken": "the STS token is expired, malformed or not issued for this AccessKey",
    "InvalidBearerToken": "the bearer token is unknown or expired",
}
# The caller is known but not allowed. Forbidden.RAM is the documented code; the others are
# spellings seen in other products [UNCONFIRMED for VPC/SLB/CS]; 403 Forbidden.* counts too.
PERMISSION_CODES = frozenset(
    {
        "Forbidden.RAM",
        "Forbidden.NoPermission",
        "NoPermission",
    }
)

# (read-only, full) system policy per RAM service. Names from Alibaba Cloud's help pages;
# whether a ReadOnly policy covers non-Describe reads (cs:Query*, cs:ListAddons) is a guess,
# so reads name both.
SYSTEM_POLICIES = {
    "vpc": ("AliyunVPCReadOnlyAccess", "AliyunVPCFullAccess"),
    "slb": ("AliyunSLBReadOnlyAccess", "AliyunSLBFullAccess"),
    "cs": ("AliyunCSReadOnlyAccess", "AliyunCSFullAccess"),
    "mse": ("AliyunMSEReadOnlyAccess", "AliyunMSEFullAccess"),
}
_READ_VERBS = ("Describe", "List", "Get", "Query")


def system_policy(auth_action: str) -> str:
    """The system policy (or policies) that grant ``auth_action``; '' for an unknown service."""
    service, _, name = auth_action.partition(":")
    policies = SYSTEM_POLICIES.get(service.lower())
    if policies is None:
        return ""
    read_only, full = policies
    if name.startswith(_READ_VERBS):
        return f"{read_only} (or {full})"
    return full


def is_throttling(code: str | None, status: int | None) -> bool:
    return (
        (code or "") in THROTTLING_CODES
        or (code or "").startswith("Throttling")
        or (status is not None and status >= 500)
    )


def is_credential(code: str | None) -> bool:
    return (code or "").startswith(CREDENTIAL_PREFIXES)


def is_permission(code: str | None, status: int | None, auth_action: str | None) -> bool:
    code = code or ""
    return (
        bool(auth_action)
        or code in PERMISSION_CODES
        or "NoPermission" in code
        or (status == 403 and code.startswith("Forbidden"))
    )


def throttled(recommend: str | None) -> str:
    """Throttling or 5xx: egress_lib retried with backoff; a later re-run is safe."""
    link = f" Alibaba Cloud's advice for this RequestId: {recommend}" if recommend else ""
    return (
        "The API is limiting calls or failed on its side, and still did after egress_lib's "
        "retries with backoff. Wait a minute, then re-run the step: re-running is safe, every "
        "step is idempotent and its plan shows what is already done." + link
    )


def permission(
    product: str,
    action: str,
    auth_action: str | None,
    principal: str | None,
    credential_source: str | None,
) -> str:
    """Forbidden.RAM and alike: the RAM action denied and the system policy that grants it."""
    wanted = auth_action or ram_action(product, action)
    source = credential_source or "the credentials in use"
    who = f"RAM identity {principal} ({source})" if principal else source
    policy = system_policy(wanted)
    grant = (
        f"the system policy {policy} to it (or a custom policy that allows {wanted})"
        if policy
        else f"a policy that allows {wanted} to it"
    )
    return (
        f"The RAM action {wanted} was denied to {who}. Ask a RAM administrator to attach "
        f"{grant}, then re-run the step: re-running is safe, its plan shows what is done."
    )


def credentials(code: str, credential_source: str | None) -> str:
    """A wrong or expired AccessKey/STS token: say where the credentials came from."""
    why = next((w for p, w in CREDENTIAL_WHY.items() if code.startswith(p)), "")
    source = credential_source or "the default credential chain"
    return (
        f"Alibaba Cloud refused the credentials{': ' + why if why else ''}. They came from "
        f"{source}. Fix or renew them there (never in the parameters), then re-run from the "
        "connect cell."
    )


def for_cloud_error(
    product: str,
    action: str,
    code: str | None,
    status: int | None,
    *,
    auth_action: str | None = None,
    principal: str | None = None,
    credential_source: str | None = None,
    connection: bool = False,
    message: str = "",
    recommend: str | None = None,
) -> str | None:
    """The remedy for one failed OpenAPI call; None: the class default fits."""
    if connection:
        if "credential" in message.lower():
            return (
                f"No credentials could be loaded for the OpenAPI call (from "
                f"{credential_source or 'the default credential chain'}). Provide them: "
                "ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET, an `aliyun configure` profile, RRSA or "
                "an ECS RAM role; then re-run from the connect cell."
            )
        return (
            "The OpenAPI endpoint gave no usable answer: check the network path to it (proxy, "
            "DNS, VPC endpoint); for the sandbox, `egress-sandbox status`. Then re-run the "
            "step: re-running is safe."
        )
    if code and code.startswith("InvalidTimeStamp"):
        return "This machine's clock is off by more than 15 minutes: sync it (NTP), then re-run."
    if is_credential(code):
        return credentials(code or "", credential_source)
    if is_permission(code, status, auth_action):
        return permission(product, action, auth_action, principal, credential_source)
    if is_throttling(code, status):
        return throttled(recommend)
    return None


def mse_failed(name: str) -> str:
    """A Failed MseIngressConfig: the controller does not retry it; delete, fix, re-run 02."""
    return (
        f"A Failed MseIngressConfig stays Failed: re-running 02 fails the same way. Fix the "
        f"cause its message and Events name, then delete it with `kubectl delete "
        f"mseingressconfig {name}` (this also deletes the MSE gateway it created; the "
        f"IngressClass can stay; 99-teardown removes everything the runbook made), and re-run "
        f"02-create-gateway. `kubectl describe mseingressconfig {name}` shows the same Events."
    )


def gateway_wait(name: str, timeout: float) -> str:
    """The gateway wait ran out: usually slow, sometimes stuck."""
    return (
        f"An MSE gateway usually takes 3-5 minutes. Re-run 02-create-gateway: it changes "
        f"nothing and waits again for MseIngressConfig {name}. If it is only slow, raise "
        f"timeouts.gateway_seconds (now {timeout:g}); the Events below (or `kubectl describe "
        f"mseingressconfig {name}`) show what the controller is doing."
    )


def verify_503(vswitches: Sequence[str], entry_name: str) -> str:
    """HTTP 503 through the gateway: it reached no upstream, most often for want of SNAT."""
    names = ", ".join(vswitches) or "the gateway vSwitch"
    return (
        f"HTTP 503 from the gateway usually means it has no way out to the internet. Check the "
        f"SNAT entry of step 03 (03-configure-snat) for the gateway vSwitch(es) {names}: an "
        f"entry named {entry_name!r} must exist for each and be Available (03's SNAT table "
        f"shows them). Run or re-run 03-configure-snat, then re-run 06-verify (it only starts "
        f"temporary pods)."
    )


# Where MSE lets a domain name be a service of its own, resolved by the gateway's DNS
# ("DNS domain" service source), instead of an ExternalName Service in the cluster.
MSE_DNS_SERVICE_URL = "https://help.aliyun.com/en/mse/user-guide/create-service"


def verify_all_503(vswitches: Sequence[str], entry_name: str) -> str:
    """Every ExternalName route answered 503: SNAT first, then the ExternalName-as-alias case."""
    return (
        f"{verify_503(vswitches, entry_name)} If the SNAT entries are Available and every "
        "route still answers 503, the gateway may not resolve ExternalName Services at all: "
        "newer gateway versions (following Istio 1.21) treat an ExternalName Service as an "
        "alias of another Service rather than a DNS name to resolve, so the route has no "
        "upstream. If the MSE console shows the route's service without endpoints, add the "
        "destination's domain to the gateway as a service of the DNS-domain service source "
        f"gateway and route to that service instead ({MSE_DNS_SERVICE_URL})."
    )


def verify_failed() -> str:
    """Destinations failed for another reason than 503."""
    return (
        "Check the route (05-ingress-routes: host, path, backend protocol and port) and that "
        "the destination answers from the internet, then re-run 06-verify: it only starts "
        "temporary pods, so re-running is safe."
    )


def verify_bypass(
    ways_out: Sequence[str], node_vswitches: Sequence[str], gateway_vswitches: Sequence[str]
) -> str:
    """Pods reached a destination without the gateway: close the way out the nodes have.

    ``ways_out``: one line per SNAT entry that serves a node vSwitch, as the Fix column names
    it; empty when none does (then a node's own EIP or public IP is the likely way out).
    """
    gateway = ", ".join(gateway_vswitches) or "the gateway vSwitch"
    nodes = ", ".join(node_vswitches) or "the nodes' vSwitches"
    if ways_out:
        which = "; ".join(ways_out)
        close = (
            f"Remove that SNAT entry ({which}), or scope it to the gateway's vSwitch(es) "
            f"{gateway} (SourceVSwitchId instead of a vSwitch of the nodes or a CIDR that "
            "covers them): VPC console, NAT gateway, SNAT management; `aliyun vpc "
            "DeleteSnatEntry` takes the SnatTableId and SnatEntryId named."
        )
    else:
        close = (
            f"No SNAT entry serves the nodes' vSwitches ({nodes}): look for an EIP or public IP "
            "bound to the node instances (ECS console, or `aliyun vpc DescribeEipAddresses "
            "--AssociatedInstanceType EcsInstance`) and unbind it, or a route of their route "
            "table to another NAT or VPN."
        )
    return (
        f"Pods reach the internet without the MSE gateway, so the gateway's policies can be "
        f"bypassed. {close} Pods then egress only through the gateway, whose vSwitch keeps "
        f"step 03's SNAT entry. Then re-run 06-verify: it only starts temporary pods."
    )


def verify_denied(key: str, value: str, source: str) -> str:
    """HTTP 403: an IP list of the parameters refuses the probe pod's address."""
    return (
        f"The gateway refused the test pod's address {source}: {key} is {value}. That is the "
        f"policy working, but the operator's pods (addresses like the test pod's) cannot reach "
        f"this destination either. If they should, change {key} (then re-run 05-ingress-routes, "
        f"or 02-create-gateway for gateway.ip_access_control), then re-run 06-verify."
    )


def verify_wrong_eip(seen: Sequence[str], expected: Sequence[str], vswitches: Sequence[str]) -> str:
    """The destination saw another source address than the gateway's SNAT EIP."""
    names = ", ".join(vswitches) or "the gateway vSwitch"
    want = ", ".join(expected) or "none: no Available SNAT entry serves them"
    return (
        f"The destination saw {', '.join(seen)} as the source, not the EIP of the SNAT entries "
        f"for the gateway vSwitch(es) {names} ({want}). Check 03-configure-snat's SNAT table "
        "(another entry, or an EIP bound to the gateway, may take the traffic out), or that "
        "verify.echo_url really echoes the caller's address; then re-run 06-verify."
    )


def kube_context_missing(
    context: str, kubeconfig: str, contexts: Sequence[str], current: str | None
) -> str:
    """kube_context names no context of the kubeconfig."""
    listed = ", ".join(contexts) or "none"
    now = f"; the current one is {current}" if current else ""
    return (
        f"Set kube_context to one of the contexts {kubeconfig} has ({listed}{now}), or to null "
        f"for the current one; `kubectl config get-contexts --kubeconfig {kubeconfig}` lists "
        "them. Then re-run the connect cell."
    )


# ---- steps that converge, recover and fail fast (issue 11) ------------------------------------


def mse_recreate(name: str) -> str:
    """A Failed MseIngressConfig the runbook made: 02 deletes and recreates it, once approved."""
    return (
        f"The controller never retries a Failed MseIngressConfig by itself. Fix the cause its "
        f"message and Events name (a parameter, a RAM role, a quota), then re-run "
        f"02-create-gateway with approve = True: its plan deletes the Failed MseIngressConfig "
        f"{name} (the MSE gateway and its CLB go with it) and creates it again, then waits for "
        f"Listening. `kubectl describe mseingressconfig {name}` shows the same Events."
    )


def mse_failed_not_ours(name: str) -> str:
    """A Failed MseIngressConfig the runbook did not create (adopted): it is not recreated."""
    return (
        f"egress-runbook did not create MseIngressConfig {name}, so it never deletes it to "
        f"recreate it. Ask whoever made it to fix it (`kubectl describe mseingressconfig "
        f"{name}` shows the Events), or delete it yourself (`kubectl delete mseingressconfig "
        f"{name}`, which also deletes its MSE gateway) and re-run 02-create-gateway to create "
        "the runbook's own."
    )


def gateway_failed_for(name: str, ingress_class: str, step: str, ours: bool) -> str:
    """A wait of 05 or 06 stopped because the gateway it depends on is Failed."""
    if ours:
        fix = (
            f"Fix the cause its message and Events name, then re-run 02-create-gateway with "
            f"approve = True: its plan deletes the Failed MseIngressConfig {name} and creates "
            f"it again (the MSE gateway and its CLB with it) and waits for Listening. Then "
            f"re-run {step}."
        )
    else:
        fix = (
            f"egress-runbook did not create MseIngressConfig {name}: ask whoever made it to "
            f"recreate it, or point gateway.ingress_class at a class of a working gateway; "
            f"then re-run {step}."
        )
    return (
        f"Waiting cannot help: a Failed MseIngressConfig stays Failed, so the gateway of "
        f"IngressClass {ingress_class} publishes no address and passes no request. {fix}"
    )


def addon_unhealthy(name: str, state: str) -> str:
    """The add-on is installed but broken (its install task failed, or it went unhealthy)."""
    return (
        f"CS reports the add-on {name} as {state}: it will not become active by waiting. Look "
        f"at it in the ACK console (the cluster's Operations > Add-ons page shows its status "
        f"and the failed task's message), fix the cause (often a RAM authorization of the "
        f"add-on), uninstall it there, then re-run 01-install-controller."
    )


def addon_deleting(name: str) -> str:
    """The add-on is being uninstalled: installing now would conflict."""
    return (
        f"The add-on {name} is being uninstalled (someone ran an uninstall, in the console or "
        f"through the API). Wait until the ACK console no longer lists it, then re-run "
        f"01-install-controller: its plan installs it again."
    )


def probe_pod_unknown(name: str, namespace: str) -> str:
    """A probe pod's create got no answer: the server may have made it anyway."""
    return (
        f"The API server did not answer the create of pod {namespace}/{name} in time; the "
        f"runbook deleted the pod if it appeared. Check the API server (`kubectl get --raw "
        f"/readyz`), then re-run the step: it only starts temporary pods. `kubectl get pods -n "
        f"{namespace} -l app.kubernetes.io/managed-by=egress-runbook` lists any left over; "
        "99-teardown deletes them."
    )


def retries_exhausted(
    call: str,
    reason: str,
    deadline: float,
    *,
    cloud: bool,
    recommend: str | None = None,
) -> str:
    """A call that kept failing, retried with backoff, until ``timeouts.api_retry_seconds``."""
    health = (
        "check the service's health and this API's quota (Alibaba Cloud's Quota Center, or "
        "the Recommend link)"
        if cloud
        else "check the API server's health (`kubectl get --raw '/readyz?verbose'`) and its "
        "API priority and fairness limits"
    )
    link = f" Alibaba Cloud's advice for the last RequestId: {recommend}" if recommend else ""
    return (
        f"{call} kept answering {reason} while egress_lib retried it with backoff for "
        f"timeouts.api_retry_seconds ({deadline:g} s). If the service is only busy or "
        f"throttled, wait a minute, or raise timeouts.api_retry_seconds; if it keeps failing, "
        f"{health}. Then re-run the step: re-running is safe, every step is idempotent and its "
        "plan shows what is already done." + link
    )
