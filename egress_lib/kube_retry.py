"""The Kubernetes side of the one retry policy: an ``ApiClient`` whose every request is retried.

Why a subclass overriding ``call_api`` and not urllib3's ``Retry`` in
``Configuration.retries``: ``call_api`` is the one method every typed API call, list and
watch goes through, and it sees the answer (status and ``Retry-After``) before the client turns
it into an ``ApiException``. So the loop of :mod:`egress_lib.retry` runs here unchanged: the
same deadline as the cloud calls, ``Retry-After`` honoured but never past it, each retry logged
and counted, and the error after the last attempt saying so. urllib3's ``Retry`` has no overall
deadline (only counts), sleeps for ``Retry-After`` whatever is left, and has no place to
count; its own retries are turned off (``Configuration.retries = False``) so the two never
multiply.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kubernetes import client as k8s

from egress_lib import retry
from egress_lib.retry import RetryPolicy, Verdict


class RetryableAnswer(Exception):
    """An HTTP answer worth another attempt (429, 5xx); internal to :meth:`call_api`."""

    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


def kube_verdict(err: Exception) -> Verdict | None:
    """429 and 500/502/503/504 (with their ``Retry-After``), refused, reset or timed-out
    connections; nothing else (TLS failures, 4xx) is worth another attempt."""
    from urllib3.exceptions import (
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        SSLError,
    )
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(err, RetryableAnswer):
        status = int(err.response.status)
        return Verdict(f"HTTP {status}", retry.retry_after_header(err.response.headers))
    if isinstance(err, SSLError):
        return None
    if isinstance(err, (NewConnectionError, ProtocolError, Urllib3Timeout, MaxRetryError)):
        reason, _ = retry.transport_reason(err)
        return Verdict(reason)
    if isinstance(err, ConnectionError):
        return Verdict(retry.transport_reason(err)[0])
    return None


class RetryingApiClient(k8s.ApiClient):
    """``kubernetes.client.ApiClient`` with :mod:`egress_lib.retry` around every request."""

    def __init__(self, configuration: Any, policy: RetryPolicy) -> None:
        configuration.retries = False  # urllib3 raises the first error; the loop below retries
        super().__init__(configuration=configuration)
        self.retry_policy = policy

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Any = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> Any:
        """One request, repeated under :attr:`retry_policy` while the answer is retryable."""
        from kubernetes.client.exceptions import ApiException

        parent = super().call_api

        def attempt(_n: int) -> Any:
            response: Any = parent(method, url, header_params, body, post_params, _request_timeout)
            if response.status in retry.KUBE_STATUSES:
                response.read()  # the Status body, for the error; frees the connection
                raise RetryableAnswer(response)
            return response

        try:
            return retry.run(
                self.retry_policy, f"{method} {urlsplit(url).path}", attempt, kube_verdict
            )
        except RetryableAnswer as e:
            # The last answer: raised as the client would have, with the retries attached.
            try:
                ApiException.from_response(http_resp=e.response, body=None, data=None)
            except ApiException as api_error:
                info = retry.exhausted_of(e)
                if info is not None:
                    retry.mark(api_error, info)
                raise api_error from None
            raise  # from_response always raises; kept for the type checker
