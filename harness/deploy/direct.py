"""`harness deploy --via direct`: the manifests applied with the kubernetes client.

Order of business, so that bad input never leaves anything behind: build and validate every
object offline, reach the cluster, run the preflight checks (namespace marked for tests,
storage class known), and only then create or update — namespace first, the set's headless
Service before the set — and wait for the rollout with a deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from harness.deploy import manifests
from harness.deploy import spec as deploy_spec
from harness.kube import apply as kube_apply
from harness.kube import client as kube_client
from harness.kube import models as kube_models
from harness.kube import preflight as kube_preflight
from harness.kube import wait as kube_wait

Progress = Callable[[str], None]


class DeployError(Exception):
    """One line for the user. ``bad_input`` errors are refusals before anything was created."""

    def __init__(self, message: str, *, bad_input: bool) -> None:
        super().__init__(message)
        self.bad_input = bad_input


@dataclasses.dataclass(frozen=True)
class Target:
    """Which cluster: a kubeconfig file and context (None = kubectl's defaults)."""

    kubeconfig: Path | None = None
    context: str | None = None


@dataclasses.dataclass(frozen=True)
class DeployResult:
    applied: tuple[kube_apply.Applied, ...]
    storage_class: str
    rollout: str | None


def validate_offline(built: manifests.Manifests) -> None:
    try:
        kube_models.validate_all([obj.body for obj in built])
    except kube_models.ManifestInvalid as exc:
        raise DeployError(f"built an invalid manifest (a harness bug): {exc}", bad_input=False) from None


def connect(target: Target, progress: Progress) -> kube_client.ApiClient:
    try:
        api = kube_client.new_api_client(target.kubeconfig, target.context)
        version = kube_client.server_version(api)
    except kube_client.KubeconfigError as exc:
        raise DeployError(str(exc), bad_input=True) from None
    except kube_client.ClusterUnreachable as exc:
        raise DeployError(str(exc), bad_input=False) from None
    progress(f"connected to {api.configuration.host} (Kubernetes {version})")
    return api


def preflight(
    api: kube_client.ApiClient, built: manifests.Manifests
) -> tuple[kube_preflight.NamespaceState, kube_preflight.StorageClassInfo]:
    spec = built.spec
    try:
        state = kube_preflight.namespace_state(
            api, spec.namespace, manifests.TEST_NAMESPACE_LABEL, manifests.TEST_NAMESPACE_LABEL_VALUE
        )
        storage = kube_preflight.check_storage_class(api, spec.storage_class)
    except kube_preflight.PreflightError as exc:
        raise DeployError(str(exc), bad_input=True) from None
    return state, storage


def deploy(
    spec: deploy_spec.DeploySpec,
    target: Target,
    *,
    wait_timeout: float | None,
    progress: Progress,
) -> DeployResult:
    """Apply every object; wait for the rollout unless ``wait_timeout`` is None."""
    built = manifests.build(spec)
    validate_offline(built)
    api = connect(target, progress)
    try:
        state, storage = preflight(api, built)
        progress(
            f"storage class {storage.name} ({storage.provisioner}, {storage.volume_binding_mode})"
            + (" — the cluster default" if spec.storage_class is None else "")
        )
        applied: list[kube_apply.Applied] = []
        for obj in built:
            if obj.kind == "Namespace" and state == "labelled":
                # An existing namespace is never rewritten: it may carry other owners' labels.
                progress(f"{obj.ref}: exists and is labelled for tests")
                continue
            try:
                result = kube_apply.apply(api, obj.body)
            except kube_apply.ApplyError as exc:
                raise DeployError(str(exc), bad_input=False) from None
            progress(f"{result.ref}: {result.action}")
            applied.append(result)
        rollout = None
        if wait_timeout is not None:
            rollout = wait_for_rollout(api, spec, timeout=wait_timeout, progress=progress)
        return DeployResult(applied=tuple(applied), storage_class=storage.name, rollout=rollout)
    finally:
        kube_client.close(api)


def wait_for_rollout(
    api: kube_client.ApiClient, spec: deploy_spec.DeploySpec, *, timeout: float, progress: Progress
) -> str:
    what = f"statefulset {spec.namespace}/{spec.name} rollout"
    progress(f"waiting up to {timeout:g}s for {what}")
    try:
        status = kube_wait.until(
            what,
            kube_wait.statefulset_rollout(api, spec.name, spec.namespace),
            timeout=timeout,
            interval=1.0,
            on_progress=lambda message: progress(f"  {message}"),
        )
    except kube_wait.WaitTimeout as exc:
        raise DeployError(str(exc), bad_input=False) from None
    return status.message


def undeploy(
    spec: deploy_spec.DeploySpec,
    target: Target,
    *,
    delete_claims: bool,
    delete_namespace: bool,
    wait_timeout: float | None,
    progress: Progress,
) -> list[str]:
    """Delete what :func:`deploy` created (claims and namespace only when asked); returns what went."""
    built = manifests.build(spec)
    api = connect(target, progress)
    deleted: list[str] = []
    try:
        try:
            state = kube_preflight.namespace_state(
                api, spec.namespace, manifests.TEST_NAMESPACE_LABEL, manifests.TEST_NAMESPACE_LABEL_VALUE
            )
        except kube_preflight.PreflightError as exc:
            raise DeployError(str(exc), bad_input=True) from None
        if state == "missing":
            progress(f"namespace {spec.namespace} does not exist: nothing to delete")
            return deleted
        for obj in (built.pdb, built.statefulset, built.service):
            if obj is None:
                continue
            try:
                gone = kube_apply.delete(api, obj.body)
            except kube_apply.ApplyError as exc:
                raise DeployError(str(exc), bad_input=False) from None
            progress(f"{obj.ref}: {'deleted' if gone else 'already gone'}")
            if gone:
                deleted.append(obj.ref)
        selector = ",".join(f"{key}={value}" for key, value in manifests.selector_labels(spec).items())
        if wait_timeout is not None:
            what = f"pods of statefulset {spec.namespace}/{spec.name} to terminate"
            try:
                kube_wait.until(
                    what,
                    kube_wait.pods_gone(api, spec.namespace, selector),
                    timeout=wait_timeout,
                    interval=1.0,
                    on_progress=lambda message: progress(f"  {message}"),
                )
            except kube_wait.WaitTimeout as exc:
                raise DeployError(str(exc), bad_input=False) from None
        if delete_claims:
            try:
                claims = kube_apply.delete_claims(api, spec.namespace, selector)
            except kube_apply.ApplyError as exc:
                raise DeployError(str(exc), bad_input=False) from None
            for claim in claims:
                progress(f"PersistentVolumeClaim {spec.namespace}/{claim}: deleted")
                deleted.append(f"PersistentVolumeClaim {spec.namespace}/{claim}")
        if delete_namespace:
            try:
                gone = kube_apply.delete(api, built.namespace.body)
            except kube_apply.ApplyError as exc:
                raise DeployError(str(exc), bad_input=False) from None
            progress(f"{built.namespace.ref}: {'deleted' if gone else 'already gone'}")
            if gone:
                deleted.append(built.namespace.ref)
        return deleted
    finally:
        kube_client.close(api)
