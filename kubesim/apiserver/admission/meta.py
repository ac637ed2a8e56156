"""Shared validation pieces: names, labels, ObjectMeta and label selectors.

Upstream: `staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go` and `generic.go`,
`staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go`,
`staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kubesim.apiserver import fielderrors as fe
from kubesim.apiserver import resources, selectors
from kubesim.apiserver.fielderrors import FieldError

Obj = Mapping[str, Any]
Errors = list[FieldError]

# ---------------------------------------------------------------------------------------------
# Generic helpers
# ---------------------------------------------------------------------------------------------


def get_path(obj: object, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def as_map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


NEGATIVE_MSG = "must be greater than or equal to 0"
IMMUTABLE_MSG = "field is immutable"


def nonnegative(value: object, path: str) -> Errors:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [fe.invalid(path, value, NEGATIVE_MSG)]
    return []


def semantic(value: object) -> object:
    """Normalise for apiequality.Semantic.DeepEqual, which treats nil and empty slices/maps as equal."""
    if isinstance(value, Mapping):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v not in ([], {})}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def semantic_map(value: Mapping[str, Any]) -> dict[str, Any]:
    """`semantic` for a mapping, typed as one."""
    return {k: v for k, v in ((k, semantic(v)) for k, v in value.items()) if v is not None and v not in ([], {})}


def immutable(new: object, old: object, path: str) -> Errors:
    """ValidateImmutableField."""
    if new != old:
        return [fe.invalid(path, new, IMMUTABLE_MSG)]
    return []


# ---------------------------------------------------------------------------------------------
# Names (apimachinery/pkg/api/validation/generic.go, util/validation/validation.go)
# ---------------------------------------------------------------------------------------------

DNS1123_LABEL_RE = re.compile(f"^{selectors.DNS1123_LABEL_FMT}$")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_RE = re.compile(f"^{DNS1035_LABEL_FMT}$")


def dns1123_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(selectors.max_len_error(63))
    if not DNS1123_LABEL_RE.match(value):
        errs.append(selectors.regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character", selectors.DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1035_label_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append(selectors.max_len_error(63))
    if not DNS1035_LABEL_RE.match(value):
        errs.append(selectors.regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
            "character, and end with an alphanumeric character", DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


NameValidator = Callable[[str, bool], list[str]]


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return selectors.dns1123_subdomain_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return dns1123_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return dns1035_label_errors(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    """``path.ValidatePathSegmentName`` (rbac ``ValidateRBACName``): no ``.``/``..`` name, no ``/`` or ``%``."""
    out = [f"may not be '{name}'"] if not prefix and name in (".", "..") else []
    return out + [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


NAME_VALIDATORS: Mapping[str, NameValidator] = {
    "Namespace": name_is_dns_label,
    "StatefulSet": name_is_dns_label,  # apps ValidateStatefulSetName: NameIsDNSLabel
    "Service": name_is_dns1035_label,
    **dict.fromkeys(("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"), name_is_path_segment),
}
"""Every other kind uses NameIsDNSSubdomain."""


def name_validator(kind: str) -> NameValidator:
    return NAME_VALIDATORS.get(kind, name_is_dns_subdomain)


def is_namespaced(kind: str) -> bool:
    row = resources.by_kind(kind)
    return True if row is None else row.namespaced


# ---------------------------------------------------------------------------------------------
# ObjectMeta
# ---------------------------------------------------------------------------------------------

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_labels(labels: object, path: str) -> Errors:
    errs: Errors = []
    for key, value in as_map(labels).items():
        errs += [fe.invalid(path, key, msg) for msg in selectors.qualified_name_errors(str(key))]
        if not isinstance(value, str):
            errs.append(fe.invalid(path, value, "label values must be strings"))
            continue
        errs += [fe.invalid(path, value, msg) for msg in selectors.label_value_errors(value)]
    return errs


def validate_annotations(annotations: object, path: str) -> Errors:
    errs: Errors = []
    total = 0
    for key, value in as_map(annotations).items():
        errs += [fe.invalid(path, key, msg) for msg in selectors.qualified_name_errors(str(key).lower())]
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(fe.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(refs: object, path: str) -> Errors:
    errs: Errors = []
    controllers: list[str] = []
    for raw_ref in as_list(refs):
        ref = as_map(raw_ref)
        api_version = str(ref.get("apiVersion") or "")
        version = api_version.rpartition("/")[2]
        if not version:
            errs.append(fe.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(fe.invalid(f"{path}.{key}", ref.get(key) or "", "must not be empty"))
        if ref.get("kind") == "Event" and version == "v1" and api_version in ("v1", "events.k8s.io/v1"):
            errs.append(fe.invalid(path, dict(ref), f"{api_version}, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            controllers.append(str(ref.get("name")))
    if len(controllers) > 1:
        errs.append(fe.invalid(path, refs, "Only one reference can have Controller set to true. Found \"true\" in "
                                           f"references for {' and '.join(controllers)}"))
    return errs


def validate_finalizers(finalizers: object, path: str) -> Errors:
    errs: Errors = []
    names = [str(f) for f in as_list(finalizers)]
    for name in names:
        errs += [fe.invalid(path, name, msg) for msg in selectors.qualified_name_errors(name)]
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(fe.invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_object_meta(kind: str, obj: Obj, path: str = "metadata") -> Errors:
    """ValidateObjectMetaAccessor with the kind's name rule and scope."""
    meta = as_map(obj.get("metadata"))
    validate_name = name_validator(kind)
    errs: Errors = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs += [fe.invalid(f"{path}.generateName", generate_name, msg) for msg in validate_name(generate_name, True)]
    name = meta.get("name") or ""
    if not name:
        errs.append(fe.required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [fe.invalid(f"{path}.name", name, msg) for msg in validate_name(str(name), False)]
    namespace = meta.get("namespace") or ""
    if is_namespaced(kind):
        if not namespace:
            errs.append(fe.required(f"{path}.namespace"))
        else:
            errs += [fe.invalid(f"{path}.namespace", namespace, msg)
                     for msg in name_is_dns_label(str(namespace), False)]
    elif namespace:
        errs.append(fe.forbidden(f"{path}.namespace", "not allowed on this type"))
    errs += nonnegative(meta.get("generation"), f"{path}.generation")
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_finalizers(meta.get("finalizers"), f"{path}.finalizers")
    return errs


def validate_object_meta_update(new: Obj, old: Obj, path: str = "metadata") -> Errors:
    """ValidateObjectMetaAccessorUpdate (system fields are assumed carried over by the REST layer)."""
    new_meta, old_meta = as_map(new.get("metadata")), as_map(old.get("metadata"))
    errs: Errors = []
    if old_meta.get("deletionTimestamp"):
        added = [f for f in as_list(new_meta.get("finalizers")) if f not in as_list(old_meta.get("finalizers"))]
        if added:
            errs.append(fe.forbidden(f"{path}.finalizers", "no new finalizers can be added if the object is being "
                                                           f"deleted, found new finalizers {fe.go_value(added)}"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        errs += immutable(new_meta.get(key) or None, old_meta.get(key) or None, f"{path}.{key}")
    if isinstance(new_meta.get("generation"), int) and isinstance(old_meta.get("generation"), int) \
            and new_meta["generation"] < old_meta["generation"]:
        errs.append(fe.invalid(f"{path}.generation", new_meta["generation"], "must not be decremented"))
    errs += validate_labels(new_meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(new_meta.get("annotations"), f"{path}.annotations")
    errs += validate_owner_references(new_meta.get("ownerReferences"), f"{path}.ownerReferences")
    errs += validate_finalizers(new_meta.get("finalizers"), f"{path}.finalizers")
    return errs


def validate_label_selector(sel: object, path: str) -> Errors:
    """metav1validation.ValidateLabelSelector (strict values)."""
    s = as_map(sel)
    errs = validate_labels(s.get("matchLabels"), f"{path}.matchLabels")
    for i, raw_expr in enumerate(as_list(s.get("matchExpressions"))):
        epath = f"{path}.matchExpressions[{i}]"
        expr = as_map(raw_expr)
        op = expr.get("operator")
        values = as_list(expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                errs.append(fe.required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(fe.forbidden(f"{epath}.values",
                                         "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(fe.invalid(f"{epath}.operator", op, "not a valid selector operator"))
        key = str(expr.get("key") or "")
        errs += [fe.invalid(f"{epath}.key", key, msg) for msg in selectors.qualified_name_errors(key)]
        for j, value in enumerate(values):
            errs += [fe.invalid(f"{epath}.values[{j}]", value, msg)
                     for msg in selectors.label_value_errors(str(value))]
    return errs
