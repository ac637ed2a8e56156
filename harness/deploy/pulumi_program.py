"""The Pulumi program: the objects of :mod:`harness.deploy.manifests`, registered as resources.

Shared by infra/__main__.py (`pulumi up` in infra/) and by `harness deploy --via pulumi`
(Automation API, inline program), so Pulumi deploys exactly what the direct path applies.
Two mistakes of the project's seed sample are impossible here by construction: the claim
template stays a *spec* inside the StatefulSet (a ``PersistentVolumeClaim`` resource passed
there would register a separate, unrelated claim), and the headless Service named by
``serviceName`` is declared with the set.

``pulumi`` and ``pulumi_kubernetes`` are imported inside the functions: the rest of the harness
must not pay for them (or need them) unless Pulumi is used.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from harness.deploy import manifests
from harness.deploy import spec as deploy_spec
from harness.kube import models as kube_models

#: Pulumi config namespace of the program (`pulumi config set ckpt:replicas 5`).
CONFIG_NAMESPACE = "ckpt"
PROJECT_NAME = "ckpt-chaos"
#: Program settings that are not part of the deploy spec. ``manageNamespace: false`` deploys
#: into an existing (labelled) namespace without the stack owning it: Pulumi refuses to create
#: an object that already exists, and a stack that owns a namespace deletes it on destroy.
MANAGE_NAMESPACE_KEY = "manageNamespace"


def spec_from_config(config: Mapping[str, str]) -> deploy_spec.DeploySpec:
    """The spec from a Pulumi config map (``{"ckpt:replicas": "5", ...}``).

    Keys of other namespaces (``kubernetes:context``) are not ours and are ignored; an unknown
    ``ckpt:`` key is refused, since a typo would otherwise deploy the default silently.
    """
    by_config_key = {option.config_key: option for option in deploy_spec.OPTIONS}
    raw: dict[str, str | None] = {}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace != CONFIG_NAMESPACE:
            continue
        key = key.removeprefix("config:")  # older engines spell keys "ckpt:config:replicas"
        if key == MANAGE_NAMESPACE_KEY:
            continue
        option = by_config_key.get(key)
        if option is None:
            known = ", ".join(f"{CONFIG_NAMESPACE}:{k}" for k in [*by_config_key, MANAGE_NAMESPACE_KEY])
            raise deploy_spec.SpecError(f"{CONFIG_NAMESPACE}:{key} is not a setting of this program; known: {known}")
        raw[option.key] = str(value)
    return deploy_spec.parse(raw, source="pulumi")


def manage_namespace_from_config(config: Mapping[str, str]) -> bool:
    for key in (f"{CONFIG_NAMESPACE}:{MANAGE_NAMESPACE_KEY}", f"{CONFIG_NAMESPACE}:config:{MANAGE_NAMESPACE_KEY}"):
        if key in config:
            value = config[key].strip().lower()
            if value in ("true", "false"):
                return value == "true"
            raise deploy_spec.SpecError(f"{key}: {config[key]!r} is not true or false")
    return True


def current_config() -> dict[str, str]:
    """The running program's whole config map (every namespace)."""
    from pulumi.runtime import config as pulumi_config

    return {str(key): str(value) for key, value in pulumi_config.CONFIG.get().items()}


def resource_name(obj: manifests.KubeObject) -> str:
    """The Pulumi logical name: stable across runs, unique per object of one deployment."""
    return f"{obj.name}-{obj.kind.lower()}"


def declare(
    built: manifests.Manifests, *, manage_namespace: bool = True, provider: object | None = None
) -> dict[str, object]:
    """Register every object as a typed pulumi_kubernetes resource; returns them by kind.

    With ``manage_namespace`` False the namespace is left out (it exists and is not the stack's).

    Must run inside a Pulumi program (or under ``pulumi.runtime.set_mocks``).
    """
    import pulumi
    import pulumi_kubernetes as k8s

    kube_models.validate_all([obj.body for obj in built])

    def options(*depends_on: pulumi.Resource, replace_first: bool = False) -> pulumi.ResourceOptions:
        # Fixed metadata.name means a replacement cannot create the new object beside the old
        # one: delete first (the set's claims survive per the retention policy).
        return pulumi.ResourceOptions(
            provider=provider,  # type: ignore[arg-type]
            depends_on=list(depends_on),
            delete_before_replace=replace_first,
        )

    def fields(obj: manifests.KubeObject) -> dict[str, Any]:
        # camelCase dicts go over the wire as they are (the SDK only renames its own
        # snake_case keys); the mock test proves the registered inputs equal the manifests.
        body = copy.deepcopy(obj.body)
        return {"metadata": body["metadata"], **({"spec": body["spec"]} if "spec" in body else {})}

    resources: dict[str, object] = {}
    first: list[pulumi.Resource] = []
    if manage_namespace:
        namespace = k8s.core.v1.Namespace(resource_name(built.namespace), **fields(built.namespace), opts=options())
        resources["Namespace"] = namespace
        first.append(namespace)
    service = k8s.core.v1.Service(
        resource_name(built.service), **fields(built.service), opts=options(*first, replace_first=True)
    )
    resources["Service"] = service
    resources["StatefulSet"] = k8s.apps.v1.StatefulSet(
        resource_name(built.statefulset),
        **fields(built.statefulset),
        opts=options(*first, service, replace_first=True),
    )
    if built.pdb is not None:
        resources["PodDisruptionBudget"] = k8s.policy.v1.PodDisruptionBudget(
            resource_name(built.pdb), **fields(built.pdb), opts=options(*first, replace_first=True)
        )
    spec = built.spec
    pulumi.export("namespace", spec.namespace)
    pulumi.export("statefulset", spec.name)
    pulumi.export("service", spec.name)
    pulumi.export("claims", [manifests.claim_name(spec, ordinal) for ordinal in range(spec.replicas)])
    return resources
