"""`pulumi up` in infra/: the checkpointing StatefulSet, from the harness's one definition.

Every setting is a Pulumi config key of the ``ckpt`` namespace mapped onto the harness's deploy
spec (``pulumi config set ckpt:replicas 5``, ``ckpt:storageClass shared``, …; the full list is
``harness.deploy.spec.OPTIONS``), so this program and ``harness deploy`` build identical objects.
``ckpt:manageNamespace false`` deploys into an existing namespace (labelled for tests) that the
stack must not own.
"""

from __future__ import annotations

import pulumi

from harness.deploy import manifests, pulumi_program
from harness.deploy import spec as deploy_spec

_config = pulumi_program.current_config()
try:
    _spec = pulumi_program.spec_from_config(_config)
    _manage_namespace = pulumi_program.manage_namespace_from_config(_config)
except deploy_spec.SpecError as exc:
    raise pulumi.RunError(str(exc)) from None

pulumi_program.declare(manifests.build(_spec), manage_namespace=_manage_namespace)
