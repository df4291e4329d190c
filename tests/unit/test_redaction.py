"""Credentials in a quoted request URL never reach an egress_lib error message."""

from __future__ import annotations

from typing import Any

import pytest
from darabonba.exceptions import UnretryableException
from darabonba.policy.retry import RetryPolicyContext

from egress_lib.cloud import call
from egress_lib.errors import CloudConnectionError, redact

URL = (
    "HTTPConnectionPool(host='127.0.0.1', port=8080): Max retries exceeded with url: "
    "/?AccessKeyId=LTAI5tSECRETID&Action=DescribeVpcs&SecurityToken=CAIS%2BsessionToken"
    "&Signature=abc%3D&SignatureMethod=HMAC-SHA1 (Caused by NewConnectionError(...))"
)


def test_redact_masks_credential_query_parameters() -> None:
    out = redact(URL)
    for secret in ("LTAI5tSECRETID", "CAIS%2BsessionToken", "abc%3D"):
        assert secret not in out
    assert "AccessKeyId=***" in out and "SecurityToken=***" in out and "Signature=***" in out
    # Everything else stays readable.
    assert "Action=DescribeVpcs" in out and "SignatureMethod=HMAC-SHA1" in out


def test_connection_error_message_is_redacted() -> None:
    ctx = RetryPolicyContext(exception=ConnectionError(URL))
    exc = UnretryableException(ctx)

    def fn(*_: Any) -> Any:
        raise exc

    with pytest.raises(CloudConnectionError) as info:
        call("vpc", "DescribeVpcs", fn)
    text = str(info.value)
    assert "Max retries exceeded" in text
    assert "LTAI5tSECRETID" not in text and "sessionToken" not in text
