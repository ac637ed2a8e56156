"""A StatefulSet's claims as the delete-claim nemesis sees them: read (by listing the run's own
namespace, which infra/rbac grants every scenario), delete one exact claim, and the set's claim
template. Kubernetes client types stay here (only harness.kube imports the client)."""

from __future__ import annotations

import dataclasses

from kubernetes import client as k8s_client

from harness.kube import apply as kube_apply


class ClaimError(Exception):
    """One line: what was asked of the API and why it could not be done."""


@dataclasses.dataclass(frozen=True)
class ClaimState:
    name: str
    uid: str
    volume: str | None
    phase: str | None
    #: marked for deletion, held by its finalizers (pvc-protection while a pod uses it)
    terminating: bool
    finalizers: tuple[str, ...]


def read_claim(api: k8s_client.ApiClient, namespace: str, name: str) -> ClaimState | None:
    """The claim ``name`` (None: there is none); a list rather than a get, the namespace being the run's own."""
    core = k8s_client.CoreV1Api(api)
    with kube_apply.api_errors(ClaimError, f"cannot read claim {name}", "cannot reach the API server"):
        items = core.list_namespaced_persistent_volume_claim(namespace).items
    for claim in items:
        meta = claim.metadata
        if meta is None or meta.name != name:
            continue
        return ClaimState(
            name=name, uid=str(meta.uid or ""),
            volume=claim.spec.volume_name if claim.spec is not None else None,
            phase=claim.status.phase if claim.status is not None else None,
            terminating=meta.deletion_timestamp is not None, finalizers=tuple(meta.finalizers or ()))
    return None


def delete_claim(api: k8s_client.ApiClient, namespace: str, name: str, uid: str) -> None:
    """Delete exactly the claim with this uid (a precondition: never a newer claim of the same name)."""
    body = k8s_client.V1DeleteOptions(preconditions=k8s_client.V1Preconditions(uid=uid))
    with kube_apply.api_errors(ClaimError, f"delete claim {name} refused",
                               f"delete claim {name}: cannot reach the API server"):
        k8s_client.CoreV1Api(api).delete_namespaced_persistent_volume_claim(name, namespace, body=body)


def claim_template(api: k8s_client.ApiClient, namespace: str, statefulset: str) -> str:
    """The name of the set's one claim template (``data``)."""
    with kube_apply.api_errors(ClaimError, f"read StatefulSet {statefulset} refused",
                               f"read StatefulSet {statefulset}: cannot reach the API server"):
        sts = k8s_client.AppsV1Api(api).read_namespaced_stateful_set(statefulset, namespace)
    templates = (sts.spec.volume_claim_templates if sts.spec is not None else None) or []
    if len(templates) != 1 or templates[0].metadata is None or not templates[0].metadata.name:
        raise ClaimError("the set must have exactly one named claim template")
    return str(templates[0].metadata.name)
