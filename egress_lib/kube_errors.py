"""Kubernetes client exceptions as :class:`~egress_lib.errors.KubernetesApiError`.

Split from :mod:`egress_lib.kube`, which re-exports :func:`k8s_errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from egress_lib import remedies, retry
from egress_lib.errors import KubernetesApiError


@contextmanager
def k8s_errors(operation: str, kind: str | None, name: str | None) -> Iterator[None]:
    """Convert client exceptions (HTTP and transport) into :class:`KubernetesApiError`.

    A request retried until ``timeouts.api_retry_seconds`` says so, with the remedy for it.
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as e:
        err = KubernetesApiError.from_api_exception(e, kind=kind, name=name, operation=operation)
        raise _retried(err, retry.exhausted_of(e)) from e
    except HTTPError as e:
        err = KubernetesApiError(
            status=None,
            reason="ConnectionError",
            message=str(e),
            kind=kind,
            name=name,
            operation=operation,
        )
        raise _retried(err, retry.exhausted_of(e)) from e


def _retried(err: KubernetesApiError, info: retry.Exhausted | None) -> KubernetesApiError:
    if info is None or info.attempts < 2:
        return err
    return KubernetesApiError(
        status=err.status,
        reason=err.reason,
        message=f"{err.message}; {info.describe()}",
        kind=err.kind,
        name=err.name,
        operation=err.operation,
        remedy=remedies.retries_exhausted(info.call, info.reason, info.deadline, cloud=False),
    )
