"""ACS3-HMAC-SHA256 (and legacy RPC HMAC-SHA1) signatures, exactly as the reference's D4/D7.

Pure functions over the request as received: nothing here knows about secrets storage, time or
nonces (see ``auth.py``). The server rebuilds the canonical request from the *raw* path and query
it received, so anything a client encodes differently from the recipe fails to verify, as it
would against the real gateway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Authorization:
    """A parsed ``Authorization: ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``"""

    algorithm: str
    credential: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """Parse the header; None when it is not a well-formed ACS3 authorization."""
    algorithm, _, rest = value.strip().partition(" ")
    if not rest:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        return None
    if not fields["Credential"] or not fields["SignedHeaders"] or not fields["Signature"]:
        return None
    return Authorization(
        algorithm=algorithm,
        credential=fields["Credential"],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
    )


def canonical_query(raw_query: str) -> str:
    """Sorted ``key=quote(value, safe='~')`` pairs; keys as received (the SDK leaves them)."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))


def canonical_headers(headers: Mapping[str, list[str]], names: Iterable[str]) -> str:
    """``name:value\\n`` per signed header; repeated headers joined by ',' after sorting."""
    lines = []
    for name in names:
        values = sorted(v.strip() for v in headers.get(name, []))
        lines.append(f"{name}:{','.join(values)}\n")
    return "".join(lines)


def canonical_request(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, list[str]],
    signed_headers: Iterable[str],
    hashed_payload: str,
) -> str:
    names = list(signed_headers)
    return "\n".join(
        [
            method.upper(),
            raw_path or "/",
            canonical_query(raw_query),
            canonical_headers(headers, names),
            ";".join(names),
            hashed_payload,
        ]
    )


def string_to_sign(canonical: str, algorithm: str = ACS3_ALGORITHM) -> str:
    return f"{algorithm}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"


def acs3_signature(secret: str, to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signatures_equal(a: str, b: str) -> bool:
    # Constant-time, so the emulator does not teach timing attacks by example.
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# --- legacy RPC signature (SignatureMethod=HMAC-SHA1, SignatureVersion=1.0) --------------------


def rpc_v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&percentEncode(sorted k=v&...)`` over every parameter except Signature."""
    canon = "&".join(
        f"{quote(k, safe='~')}={quote(v, safe='~')}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    return f"{method.upper()}&%2F&{quote_plus(canon, safe='~')}"


def rpc_v2_signature(secret: str, to_sign: str) -> str:
    digest = hmac.new(
        (secret + "&").encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")
