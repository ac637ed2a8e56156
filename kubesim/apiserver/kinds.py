"""Per-resource storage policy that the generic verbs consult (the ``RESTStrategy`` bits upstream).

Each table cites the upstream strategy it mirrors; a resource missing from a table gets the
generic behaviour (no generation, Status body on delete, no create-on-update).
"""

from __future__ import annotations

from kubesim.apiserver import resources

#: Kinds whose strategies set ``metadata.generation`` and bump it when ``spec`` changes
#: (apps statefulset, policy poddisruptionbudget, core pod since PodObservedGenerationTracking).
GENERATION_KINDS = frozenset({"Pod", "StatefulSet", "PodDisruptionBudget"})

#: ``ReturnDeletedObject`` registries: DELETE answers with the object, not a Status
#: (the Python client decodes these into typed models, e.g. ``delete_namespaced_pod -> V1Pod``).
RETURNS_DELETED_OBJECT = frozenset({
    ("", "pods"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("", "services"),
    ("", "serviceaccounts"), ("storage.k8s.io", "storageclasses"),
})

#: ``AllowCreateOnUpdate() == true``: PUT of a missing object creates it.
CREATE_ON_UPDATE = frozenset({
    ("", "events"), ("", "endpoints"), ("coordination.k8s.io", "leases"), ("events.k8s.io", "events"),
})

#: Kinds whose PrepareForCreate keeps a client-supplied status (the kubelet registers nodes with status).
STATUS_ON_CREATE = frozenset({"Node"})


#: The status a create starts from, with the fields the v1 types serialise even when zero.
INITIAL_STATUS: dict[str, dict[str, object]] = {
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
    "Service": {"loadBalancer": {}},
}


def storage_key(res: resources.Resource) -> str:
    """Where objects of a resource live in the store. events.k8s.io events share core events' storage."""
    if (res.group, res.plural) == ("events.k8s.io", "events"):
        return "core/events"
    return f"{res.group or 'core'}/{res.plural}"


def has_status(res: resources.Resource) -> bool:
    return "status" in res.subresources
