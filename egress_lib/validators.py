"""Format checks for IDs, Kubernetes names and hosts, as pydantic ``Annotated`` types.

Each check raises ``PydanticCustomError`` with the text after "expected", so the
parameter loader can print "path: value is not X; expected Y" without pydantic's prefixes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, StrictStr
from pydantic_core import PydanticCustomError

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
CLUSTER_ID = re.compile(r"^c[0-9a-f]{32}$")
VSWITCH_ID = re.compile(r"^vsw-[a-z0-9]{8,}$")
NAT_GATEWAY_ID = re.compile(r"^ngw-[a-z0-9]{8,}$")
SNAT_ENTRY_ID = re.compile(r"^snat-[a-z0-9]{8,}$")
REGION_ID = re.compile(r"^[a-z]{2,}-[a-z0-9-]+$")


def _fail(what: str, expected: str) -> PydanticCustomError:
    # "expected" travels in the context so the loader can rebuild the message its own way.
    return PydanticCustomError(
        "egress_format", "{what}; expected {expected}", {"what": what, "expected": expected}
    )


# For modules that define their own checks in the same style.
fail = _fail


def _pattern(rx: re.Pattern[str], noun: str, expected: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not rx.match(value):
            raise _fail(f"{value!r} is not {noun}", expected)
        return value

    return check


def _dns_name(rx: re.Pattern[str], max_len: int, noun: str, expected: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > max_len or not rx.match(value):
            raise _fail(f"{value!r} is not {noun}", expected)
        return value

    return check


_dns_label = _dns_name(
    DNS1123_LABEL,
    63,
    "a DNS-1123 label",
    "at most 63 lowercase letters, digits or '-', starting and ending alphanumeric",
)
_dns_subdomain = _dns_name(
    DNS1123_SUBDOMAIN,
    253,
    "a DNS-1123 subdomain",
    "at most 253 characters of lowercase DNS labels separated by '.'",
)


# Why no wildcard: each destination's host is also the spec.externalName of its Service, the
# gateway's backend. The Kubernetes API takes only a DNS-1123 subdomain there (cluster DNS
# answers the Service with a CNAME to exactly that name), so "*.example.com" fails at step 04,
# after steps 01-03 changed the cloud; and a wildcard Ingress rule would route names no
# destination was checked for.
WILDCARD_EXPECTED = (
    "a concrete host name such as 'api.example.com': an ExternalName Service needs one; a "
    "wildcard Ingress host is not supported (list each host as its own destination)"
)
_HOST_EXPECTED = "a lowercase DNS name such as 'www.example.com'"


def _dns_host(value: str, wildcard: str) -> str:
    """One DNS host name; each way it can be wrong gets its own message."""
    if "://" in value or "/" in value:
        raise _fail(f"{value!r} is not a host name", "a bare host name without scheme or path")
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        pass
    else:
        raise _fail(
            f"{value!r} is an IP address",
            "a DNS host name (Ingress rules match host names, not IPs)",
        )
    if "*" in value:
        raise _fail(f"{value!r} is a wildcard", wildcard)
    name, colon, port = value.rpartition(":")
    if colon and port.isdigit():
        raise _fail(
            f"{value!r} is not a host name: it has a port",
            f"the host name alone ({name!r}); the port is its own key (port)",
        )
    if value != value.lower():
        raise _fail(
            f"{value!r} is not a host name: it has upper-case letters",
            f"{value.lower()!r} (DNS names in lowercase)",
        )
    if "_" in value:
        raise _fail(
            f"{value!r} is not a host name: it contains '_'",
            "letters, digits, '-' and '.' only (an underscore is no part of a host name)",
        )
    if value.endswith("."):
        raise _fail(
            f"{value!r} is not a host name: it ends with '.'",
            f"{value.rstrip('.')!r} (without the root dot)",
        )
    if "." not in value and DNS1123_LABEL.match(value):
        raise _fail(
            f"{value!r} is not a host name: it is a single label",
            "a fully qualified name such as 'www.example.com' (the gateway resolves it in "
            "public DNS)",
        )
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        raise _fail(f"{value!r} is not a host name", _HOST_EXPECTED)
    long = [label for label in value.split(".") if len(label) > 63]
    if long:
        raise _fail(f"{value!r} is not a host name: a label is over 63 characters", _HOST_EXPECTED)
    return value


def _host(value: str) -> str:
    return _dns_host(value, WILDCARD_EXPECTED)


def _server_name(value: str) -> str:
    # A TLS server name or Host header names one host: a wildcard would be sent literally.
    return _dns_host(value, "one host name such as 'api.example.com'")


# What the Kubernetes API refuses in an Exact or Prefix Ingress path (invalidPathSequences and
# invalidPathSuffixes in kubernetes pkg/apis/networking/validation/validation.go). Refused for
# ImplementationSpecific too: the runbook sets no use-regex, so MSE matches it as a prefix.
_BAD_PATH_PARTS = ("//", "/./", "/../", "%2f", "%2F")
_BAD_PATH_ENDS = ("/..", "/.")


def _path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail(f"{value!r} is not an HTTP path", "a path starting with '/'")
    if any(c.isspace() for c in value):
        raise _fail(f"{value!r} contains white space", "a path without spaces")
    for mark in ("?", "#"):
        if mark in value:
            raise _fail(
                f"{value!r} contains {mark!r}",
                "the path alone, without query or fragment (Ingress rules match the path only)",
            )
    bad = [p for p in _BAD_PATH_PARTS if p in value] + [
        p for p in _BAD_PATH_ENDS if value.endswith(p)
    ]
    if bad:
        raise _fail(
            f"{value!r} contains {bad[0]!r}",
            "a path without '//', '/./', '/../' or '%2f' and not ending in '/.' or '/..' (the "
            "Kubernetes API refuses such an Ingress path)",
        )
    return value


# Where private and special addresses live: none of them can be an EIP (an EIP is a public
# address), so a snat_ip there is a VPC or node address given by mistake.
_NOT_EIP = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_EIP_EXPECTED = "an EIP address such as '47.96.1.2'"


def _eip_address(value: str) -> str:
    if value.startswith("eip-"):
        raise _fail(
            f"{value!r} is an EIP's allocation ID",
            f"{_EIP_EXPECTED}: its IpAddress, not its ID (CreateSnatEntry's SnatIp takes the "
            "address)",
        )
    if "," in value:
        raise _fail(f"{value!r} lists several addresses", f"one EIP: {_EIP_EXPECTED}")
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise _fail(f"{value!r} is not an IPv4 address", _EIP_EXPECTED) from None
    private = next((n for n in _NOT_EIP if ip in n), None)
    if private is not None:
        raise _fail(
            f"{value!r} is in {private}, a private or special range that no EIP is in",
            f"{_EIP_EXPECTED} (the public address of an EIP bound to the NAT gateway), or null",
        )
    return value


ClusterId = Annotated[
    StrictStr,
    AfterValidator(
        _pattern(CLUSTER_ID, "an ACK cluster ID", "'c' followed by 32 lowercase hex digits")
    ),
]
VSwitchId = Annotated[
    StrictStr,
    AfterValidator(
        _pattern(VSWITCH_ID, "a vSwitch ID", "'vsw-' followed by lowercase letters and digits")
    ),
]
NatGatewayId = Annotated[
    StrictStr,
    AfterValidator(
        _pattern(
            NAT_GATEWAY_ID, "a NAT gateway ID", "'ngw-' followed by lowercase letters and digits"
        )
    ),
]
_snat_entry = _pattern(
    SNAT_ENTRY_ID, "a SNAT entry ID", "'snat-' followed by lowercase letters and digits"
)
RegionId = Annotated[
    StrictStr,
    AfterValidator(_pattern(REGION_ID, "a region ID", "a region ID such as 'cn-hangzhou'")),
]
DnsLabel = Annotated[StrictStr, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[StrictStr, AfterValidator(_dns_subdomain)]
Host = Annotated[StrictStr, AfterValidator(_host)]
ServerName = Annotated[StrictStr, AfterValidator(_server_name)]
HttpPath = Annotated[StrictStr, AfterValidator(_path)]
EipAddress = Annotated[StrictStr, AfterValidator(_eip_address)]
SnatEntryId = Annotated[StrictStr, AfterValidator(_snat_entry)]


# What ``adopt:`` may list, and how each kind's name is checked (SnatEntry: its entry ID).
ADOPTABLE_KINDS: dict[str, tuple[Callable[[str], str], str]] = {
    "Service": (_dns_label, "a DNS-1123 label"),
    "Ingress": (_dns_subdomain, "a DNS-1123 subdomain"),
    "IngressClass": (_dns_subdomain, "a DNS-1123 subdomain"),
    "MseIngressConfig": (_dns_subdomain, "a DNS-1123 subdomain"),
    "SnatEntry": (_snat_entry, "a SNAT entry ID: 'snat-' followed by lowercase letters and digits"),
}
ADOPT_FORM = (
    "'Kind/name' with Kind one of "
    + ", ".join(ADOPTABLE_KINDS)
    + ", e.g. 'Ingress/mse-ingress' or 'SnatEntry/snat-bp1abc2def3ghi4jkl'"
)


def _adopt_ref(value: str) -> str:
    kind, sep, name = value.partition("/")
    if not sep or not name:
        raise _fail(f"{value!r} is not a 'Kind/name' reference", ADOPT_FORM)
    if kind not in ADOPTABLE_KINDS:
        near = [k for k in ADOPTABLE_KINDS if k.lower() == kind.lower()]
        hint = f" (kinds are case-sensitive: {near[0]!r})" if near else ""
        raise _fail(f"{kind!r} is not a kind the runbook can adopt{hint}", ADOPT_FORM)
    check, noun = ADOPTABLE_KINDS[kind]
    try:
        check(name)
    except PydanticCustomError:
        raise _fail(
            f"{name!r} is not a valid {kind} name", f"{kind}/<name> with <name> {noun}"
        ) from None
    return value


AdoptRef = Annotated[StrictStr, AfterValidator(_adopt_ref)]


# Credentials are never parameters; these fragments in a key's name mark one.
CREDENTIAL_FRAGMENTS = (
    "accesskey",
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "bearer",
)
CREDENTIAL_WORDS = ("sts",)  # only as a whole word: "sts", "sts_role", "StsToken", not "hosts"
REDACTED = "<redacted>"


def looks_like_credential(key: str) -> bool:
    """Whether a key's name looks like it holds a credential (case-insensitive).

    ``access_key``, ``AccessKeyId``, ``access-key-secret``, ``token``, ``password``,
    ``sts_role_arn``... match; ``hosts`` or ``destinations`` do not.
    """
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    if any(fragment in flat for fragment in CREDENTIAL_FRAGMENTS):
        return True
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower())
    return any(word in CREDENTIAL_WORDS for word in words)
