"""The table of resources kubesim serves, and how to look them up.

Discovery (`/api/v1`, `/apis/<group>/<version>`), URL routing and kubectl's short names are all
derived from this one table, so a resource that is missing here is missing everywhere. The
rows mirror what a real apiserver advertises in discovery (verbs, short names, categories and
the subresources with their own group/version/kind, e.g. `pods/eviction` is `policy/v1 Eviction`
and `statefulsets/scale` is `autoscaling/v1 Scale`), as registered in
`pkg/registry/*/rest/storage_*.go` and `pkg/registry/*/storage/storage.go` upstream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

ALL_VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
"""Verbs of an ordinary read-write resource, in the (sorted) order discovery lists them."""

NO_COLLECTION_DELETE: tuple[str, ...] = ("create", "delete", "get", "list", "patch", "update", "watch")
"""Namespaces: upstream refuses deletecollection (deleting every namespace at once is not offered)."""

STATUS_VERBS: tuple[str, ...] = ("get", "patch", "update")

CONNECT_VERBS: tuple[str, ...] = ("create", "get")
"""exec, attach, portforward: connect subresources reached by GET (WebSocket) or POST (SPDY)."""

PROXY_VERBS: tuple[str, ...] = ("create", "delete", "get", "patch", "update")
"""pods/proxy, services/proxy: every proxied HTTP method maps to one of these."""


@dataclasses.dataclass(frozen=True)
class Subresource:
    """A subresource such as `pods/eviction`.

    Its group/version/kind may differ from the parent's: discovery reports e.g.
    `{"name": "pods/eviction", "group": "policy", "version": "v1", "kind": "Eviction"}`. An empty
    group *and* version means "same as the parent" (kubectl treats the fields as optional).
    """

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None
    version: str | None = None


@dataclasses.dataclass(frozen=True)
class Resource:
    """One served resource (a row of discovery)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def api_version(self) -> str:
        """The `apiVersion` field of objects of this resource (`v1`, `apps/v1`)."""
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def group_resource(self) -> str:
        """`statefulsets.apps` / `pods`: the name used in error messages (`statefulsets.apps "x" not found`)."""
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    def subresource(self, name: str) -> Subresource | None:
        """The subresource's kind, verbs and (if it differs) group/version; None if not served."""
        for sub in SUBRESOURCES.get((self.group, self.plural), ()):
            if sub.name == name:
                return sub
        return None


_S = Subresource

SUBRESOURCES: Mapping[tuple[str, str], tuple[Subresource, ...]] = {
    ("", "namespaces"): (_S("status", "Namespace", STATUS_VERBS), _S("finalize", "Namespace", ("update",))),
    ("", "nodes"): (_S("status", "Node", STATUS_VERBS),),
    ("", "pods"): (
        _S("status", "Pod", STATUS_VERBS),
        _S("attach", "PodAttachOptions", CONNECT_VERBS),
        _S("binding", "Binding", ("create",)),
        _S("eviction", "Eviction", ("create",), "policy", "v1"),
        _S("exec", "PodExecOptions", CONNECT_VERBS),
        _S("log", "Pod", ("get",)),
        _S("portforward", "PodPortForwardOptions", CONNECT_VERBS),
        _S("proxy", "PodProxyOptions", PROXY_VERBS),
    ),
    ("", "services"): (_S("status", "Service", STATUS_VERBS), _S("proxy", "ServiceProxyOptions", PROXY_VERBS)),
    ("", "persistentvolumeclaims"): (_S("status", "PersistentVolumeClaim", STATUS_VERBS),),
    ("", "persistentvolumes"): (_S("status", "PersistentVolume", STATUS_VERBS),),
    ("apps", "statefulsets"): (
        _S("status", "StatefulSet", STATUS_VERBS),
        _S("scale", "Scale", STATUS_VERBS, "autoscaling", "v1"),
    ),
    ("policy", "poddisruptionbudgets"): (_S("status", "PodDisruptionBudget", STATUS_VERBS),),
    ("", "serviceaccounts"): (_S("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),),
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): (
        _S("status", "ValidatingAdmissionPolicy", STATUS_VERBS),),
}
"""Subresources per (group, plural), with the kind discovery reports for each (upstream storage registrations)."""


def _row(group: str, plural: str, singular: str, kind: str, namespaced: bool, short_names: tuple[str, ...] = (),  # noqa: PLR0917
         verbs: tuple[str, ...] = ALL_VERBS, categories: tuple[str, ...] = ()) -> Resource:
    subs = tuple(sub.name for sub in SUBRESOURCES.get((group, plural), ()))
    version = "v1"
    return Resource(group, version, plural, singular, kind, namespaced, short_names, verbs, subs, categories)


RESOURCES: tuple[Resource, ...] = (
    # core/v1 (pkg/registry/core/rest/storage_core.go)
    _row("", "namespaces", "namespace", "Namespace", False, ("ns",), NO_COLLECTION_DELETE),
    _row("", "nodes", "node", "Node", False, ("no",)),
    _row("", "pods", "pod", "Pod", True, ("po",), categories=("all",)),
    _row("", "services", "service", "Service", True, ("svc",), categories=("all",)),
    _row("", "endpoints", "endpoints", "Endpoints", True, ("ep",)),
    _row("", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", True, ("pvc",)),
    _row("", "persistentvolumes", "persistentvolume", "PersistentVolume", False, ("pv",)),
    _row("", "events", "event", "Event", True, ("ev",)),
    _row("", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    _row("", "secrets", "secret", "Secret", True),
    _row("", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    # apps/v1 (pkg/registry/apps/rest/storage_apps.go)
    _row("apps", "statefulsets", "statefulset", "StatefulSet", True, ("sts",), categories=("all",)),
    _row("apps", "controllerrevisions", "controllerrevision", "ControllerRevision", True),
    # policy/v1
    _row("policy", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", True, ("pdb",)),
    # storage.k8s.io/v1
    _row("storage.k8s.io", "storageclasses", "storageclass", "StorageClass", False, ("sc",)),
    # coordination.k8s.io/v1 (node heartbeats)
    _row("coordination.k8s.io", "leases", "lease", "Lease", True),
    # discovery.k8s.io/v1 (pkg/registry/discovery/rest/storage_discovery.go): the endpointslice controller's output
    _row("discovery.k8s.io", "endpointslices", "endpointslice", "EndpointSlice", True),
    # events.k8s.io/v1: the same events under the newer schema; `kubectl events` prefers it.
    _row("events.k8s.io", "events", "event", "Event", True, ("ev",)),
    # Identity and access (authn.py, authz.py, reviews.py): the reviews are create-only and never stored.
    _row("authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", False,
         verbs=("create",)),
    _row("authentication.k8s.io", "tokenreviews", "tokenreview", "TokenReview", False, verbs=("create",)),
    _row("authorization.k8s.io", "localsubjectaccessreviews", "localsubjectaccessreview", "LocalSubjectAccessReview",
         True, verbs=("create",)),
    _row("authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview",
         False, verbs=("create",)),
    _row("authorization.k8s.io", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview",
         False, verbs=("create",)),
    _row("authorization.k8s.io", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", False,
         verbs=("create",)),
    _row("rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", False),
    _row("rbac.authorization.k8s.io", "clusterroles", "clusterrole", "ClusterRole", False),
    _row("rbac.authorization.k8s.io", "rolebindings", "rolebinding", "RoleBinding", True),
    _row("rbac.authorization.k8s.io", "roles", "role", "Role", True),
    # admissionregistration.k8s.io/v1: stored so infra/rbac/guard.yaml applies; kubesim does not enforce the policies.
    _row("admissionregistration.k8s.io", "validatingadmissionpolicies", "validatingadmissionpolicy",
         "ValidatingAdmissionPolicy", False, categories=("api-extensions",)),
    _row("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "validatingadmissionpolicybinding",
         "ValidatingAdmissionPolicyBinding", False, categories=("api-extensions",)),
)


def _index_by_gvr(rows: Iterable[Resource]) -> Mapping[tuple[str, str, str], Resource]:
    return {(r.group, r.version, r.plural): r for r in rows}


_BY_GVR = _index_by_gvr(RESOURCES)


def by_gvr(group: str, version: str, plural: str) -> Resource | None:
    """The resource at `/api/v1/<plural>` (group "") or `/apis/<group>/<version>/<plural>`."""
    return _BY_GVR.get((group, version, plural))


def by_kind(kind: str, group: str | None = None) -> Resource | None:
    """The resource whose objects have this kind.

    `Event` exists in two groups; without `group` the core one wins (it is the one our
    controllers and kubelets write).
    """
    for row in RESOURCES:
        if row.kind == kind and (group is None or row.group == group):
            return row
    return None


def by_api_version_kind(api_version: str, kind: str) -> Resource | None:
    """The resource for an object's `apiVersion` + `kind` (`apps/v1`, `StatefulSet`)."""
    group, _, version = api_version.rpartition("/")
    for row in RESOURCES:
        if row.kind == kind and row.group == group and row.version == version:
            return row
    return None


def by_name_or_short_name(name: str) -> Resource | None:
    """Resolve what a user might type (`po`, `pod`, `pods`, `Pod`) the way kubectl's RESTMapper does."""
    lowered = name.lower()
    for row in RESOURCES:
        if lowered in (row.plural, row.singular, row.kind.lower()) or lowered in row.short_names:
            return row
    return None


def group_versions() -> tuple[tuple[str, str], ...]:
    """Every (group, version) served, core first, in table order, without repeats."""
    seen: dict[tuple[str, str], None] = {}
    for row in RESOURCES:
        seen.setdefault((row.group, row.version), None)
    return tuple(seen)


def resources_in(group: str, version: str) -> tuple[Resource, ...]:
    return tuple(r for r in RESOURCES if r.group == group and r.version == version)


def discovery_entries(group: str, version: str) -> list[dict[str, object]]:
    """The `resources` list of an `APIResourceList` for one group/version.

    Shaped like upstream's legacy discovery document: one entry for the resource and one per
    subresource (`pods/status`, `pods/eviction`, ...); subresources carry `group`/`version`
    only when they differ from the parent.
    """
    entries: list[dict[str, object]] = []
    for row in resources_in(group, version):
        entry: dict[str, object] = {
            "name": row.plural,
            "singularName": row.singular,
            "namespaced": row.namespaced,
            "kind": row.kind,
            "verbs": list(row.verbs),
        }
        if row.short_names:
            entry["shortNames"] = list(row.short_names)
        if row.categories:
            entry["categories"] = list(row.categories)
        entries.append(entry)
        for name in row.subresources:
            sub = row.subresource(name)
            assert sub is not None, f"{row.plural}/{name} is listed without a SUBRESOURCES entry"
            sub_entry: dict[str, object] = {
                "name": f"{row.plural}/{sub.name}",
                "singularName": "",
                "namespaced": row.namespaced,
                "kind": sub.kind,
                "verbs": list(sub.verbs),
            }
            if sub.group is not None:
                sub_entry["group"] = sub.group
            if sub.version is not None:
                sub_entry["version"] = sub.version
            entries.append(sub_entry)
    return entries
