"""Validation of rbac.authorization.k8s.io/v1 objects (``pkg/apis/rbac/validation/validation.go``).

Names are path segments (``ValidateRBACName``: not ``.`` or ``..``, no ``/`` or ``%``, so
``system:basic-user`` is fine); rules need verbs and either API groups plus resources or — in a
ClusterRole only — non-resource URLs; a binding's ``roleRef`` names a Role or ClusterRole of
``rbac.authorization.k8s.io`` and never changes; subjects are ServiceAccounts (API group "", and
in a ClusterRoleBinding a namespace), Users or Groups (API group ``rbac.authorization.k8s.io``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver.admission.meta import (
    as_list,
    as_map,
    dns1123_label_errors,
    name_is_dns_subdomain,
    name_is_path_segment,
    validate_label_selector,
)
from kubesim.apiserver.fielderrors import FieldError

Obj = Mapping[str, Any]
Errors = list[FieldError]
GROUP = "rbac.authorization.k8s.io"


def _policy_rule(rule: Obj, namespaced: bool, path: str) -> Errors:
    errs: Errors = []
    if not as_list(rule.get("verbs")):
        errs.append(fe.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(fe.invalid(f"{path}.nonResourceURLs", urls,
                                   "namespaced rules cannot apply to non-resource URLs"))
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.append(fe.invalid(f"{path}.nonResourceURLs", urls,
                                   "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(fe.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(fe.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _rules(obj: Obj, namespaced: bool) -> Errors:
    errs: Errors = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        errs += _policy_rule(as_map(rule), namespaced, f"rules[{i}]")
    return errs


def validate_role(obj: Obj) -> Errors:
    return _rules(obj, namespaced=True)


def validate_cluster_role(obj: Obj) -> Errors:
    errs = _rules(obj, namespaced=False)
    if "aggregationRule" in obj and obj.get("aggregationRule") is not None:
        selectors = as_list(as_map(obj.get("aggregationRule")).get("clusterRoleSelectors"))
        if not selectors:
            errs.append(fe.required("aggregationRule.clusterRoleSelectors",
                                    "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, sel in enumerate(selectors):
            errs += validate_label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]")
    return errs


def _role_ref(ref: Obj, kinds: tuple[str, ...]) -> Errors:
    errs: Errors = []
    if ref.get("apiGroup") != GROUP:
        errs.append(fe.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kind = ref.get("kind") or ""
    if kind not in kinds:
        errs.append(fe.not_supported("roleRef.kind", kind, list(kinds)))
    name = str(ref.get("name") or "")
    if not name:
        errs.append(fe.required("roleRef.name"))
    else:
        errs += [fe.invalid("roleRef.name", name, msg) for msg in name_is_path_segment(name, False)]
    return errs


def _subject(subject: Obj, cluster_scoped: bool, path: str) -> Errors:
    errs: Errors = []
    name = str(subject.get("name") or "")
    if not name:
        errs.append(fe.required(f"{path}.name"))
    kind = subject.get("kind") or ""
    group = str(subject.get("apiGroup") or "")
    if kind == "ServiceAccount":
        if name:
            errs += [fe.invalid(f"{path}.name", name, msg) for msg in name_is_dns_subdomain(name, False)]
        if group:
            errs.append(fe.not_supported(f"{path}.apiGroup", group, [""]))
        namespace = str(subject.get("namespace") or "")
        if cluster_scoped and not namespace:
            errs.append(fe.required(f"{path}.namespace"))
        elif namespace:
            errs += [fe.invalid(f"{path}.namespace", namespace, msg) for msg in dns1123_label_errors(namespace)]
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(fe.not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        errs.append(fe.not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _binding(obj: Obj, cluster_scoped: bool) -> Errors:
    kinds = ("ClusterRole",) if cluster_scoped else ("Role", "ClusterRole")
    errs = _role_ref(as_map(obj.get("roleRef")), kinds)
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        errs += _subject(as_map(subject), cluster_scoped, f"subjects[{i}]")
    return errs


def validate_role_binding(obj: Obj) -> Errors:
    return _binding(obj, cluster_scoped=False)


def validate_cluster_role_binding(obj: Obj) -> Errors:
    return _binding(obj, cluster_scoped=True)


def _binding_update(cluster_scoped: bool) -> Any:
    def check(new: Obj, old: Obj) -> Errors:
        errs = _binding(new, cluster_scoped)
        if as_map(new.get("roleRef")) != as_map(old.get("roleRef")):
            errs.append(fe.invalid("roleRef", dict(as_map(new.get("roleRef"))), "cannot change roleRef"))
        return errs
    return check


validate_role_binding_update = _binding_update(cluster_scoped=False)
validate_cluster_role_binding_update = _binding_update(cluster_scoped=True)

CREATE = {"Role": validate_role, "ClusterRole": validate_cluster_role, "RoleBinding": validate_role_binding,
          "ClusterRoleBinding": validate_cluster_role_binding}
UPDATE = {"RoleBinding": validate_role_binding_update, "ClusterRoleBinding": validate_cluster_role_binding_update}
