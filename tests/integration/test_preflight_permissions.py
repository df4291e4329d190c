"""Preflight asks the API server, before any change, whether this identity may do each step.

The sandbox kubeconfig has a read-only user (context ``sandbox-readonly``): preflight must name
every verb it lacks, and refuse to go on.
"""

from __future__ import annotations

from typing import Any

import pytest

from egress_lib import Parameters, PreconditionFailed, connect, steps


def test_a_read_only_identity_is_refused_by_preflight_naming_each_missing_verb(
    sandbox: Any, params: Parameters
) -> None:
    readonly = params.model_copy(update={"kube_context": "sandbox-readonly"})
    session = connect(readonly)
    try:
        rbac = steps.preflight.permission_checks(session)
        failed = {c.name: c.detail for c in rbac if not c.ok}
        assert "RBAC mseingressconfigs.mse.alibabacloud.com" in failed
        assert "RBAC services" in failed
        assert (
            "create" in failed["RBAC services"]
            and "in namespace default" in failed["RBAC services"]
        )
        assert "get" not in failed["RBAC services"].split("missing verbs ")[1].split(" on ")[0]
        with pytest.raises(PreconditionFailed) as err:
            steps.preflight.apply(session)
        assert "RBAC services" in str(err.value)
    finally:
        session.close()

    admin = connect(params)
    try:
        assert all(c.ok for c in steps.preflight.permission_checks(admin))
    finally:
        admin.close()
