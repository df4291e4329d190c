"""Nothing a run writes holds credentials: :func:`scrub` masks them in any JSON-like value.

Split from :mod:`egress_lib.records`, which re-exports :func:`scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from egress_lib.errors import redact

# Keys whose values are credentials, compared with case and "_"/"-" removed.
_CREDENTIAL_KEY = re.compile(r"accesskey|secret|token|password|passwd|credential|bearer")
MASK = "***"


def _is_credential_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    return bool(_CREDENTIAL_KEY.search(key.lower().replace("_", "").replace("-", "")))


def scrub(obj: Any) -> Any:
    """A copy of ``obj`` with credential-looking keys' values replaced by ``***``.

    Recurses through mappings, lists and tuples. A key looks like a credential when, case and
    ``_``/``-`` ignored, it contains access_key, secret, token, password, credential or
    bearer. Strings also lose credential query parameters (``AccessKeyId=...``; see
    :func:`egress_lib.errors.redact`). Empty values (None, "") stay as they are.
    """
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if _is_credential_key(key) and value not in (None, ""):
                out[key] = MASK
            else:
                out[key] = scrub(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, str):
        return redact(obj)
    return obj
