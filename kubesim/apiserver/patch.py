"""The three PATCH flavours the apiserver accepts, as pure functions on decoded JSON.

- `json_patch`: RFC 6902, with the leniencies of evanphx/json-patch v4 (the library the
  apiserver uses): negative array indices, a missing `value` means null, a `test` of null
  passes on a missing member.
- `merge_patch`: RFC 7386 as evanphx's MergePatch implements it; nulls are also pruned inside
  the values it sets (arrays included), which is what upstream stores once the result has been
  decoded into typed structs.
- `strategic_merge_patch`: apimachinery's `strategicpatch.StrategicMergeMapPatch` for the
  fields kubesim's kinds carry: lists with a `patchMergeKey` are merged by that key, lists of
  primitives with `patchStrategy:"merge"` are merged as sets, every other list is replaced, and
  the directives `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<f>` and
  `$setElementOrder/<f>` are honoured (ordering included: patch items keep the patch's order and
  are interleaved with server-only items by the live order, exactly as `normalizeElementOrder`
  and `mergeSortedSlice` do upstream).

Every error is a `PatchError` whose `status` is the HTTP status the real apiserver answers with
(`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`): a patch that does not decode is
400; a JSON patch that decodes but cannot be applied (missing path, failed `test`) is 422; more
than 10000 JSON patch operations is 413; strategic-merge format errors are 400 (ErrBadJSONDoc,
ErrBadPatchFormatFor*), lists of lists and retainKeys mismatches 422, and the remaining
strategic-merge failures (missing merge key, unknown `$patch` value) are passed through
upstream as plain errors, which the apiserver reports as 500 InternalError.

Inputs are never mutated; results share no mutable structure with inputs.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

JSON: TypeAlias = "bool | int | float | str | list[JSON] | dict[str, JSON] | None"

MAX_JSON_PATCH_OPERATIONS = 10000


class PatchError(ValueError):
    """A patch that cannot be decoded or applied; `status` is the apiserver's HTTP status for it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def reason(self) -> str:
        """The `Status.reason` the apiserver reports alongside `status`."""
        return {400: "BadRequest", 413: "RequestEntityTooLarge", 422: "Invalid"}.get(self.status, "InternalError")


def _bad_request(message: str) -> PatchError:
    return PatchError(message, 400)


def _unprocessable(message: str) -> PatchError:
    return PatchError(message, 422)


def _internal(message: str) -> PatchError:
    return PatchError(message, 500)


def _same(a: object, b: object) -> bool:
    """Go's `==` on decoded JSON scalars: equal values of the same dynamic type (1 != 1.0 != true)."""
    return type(a) is type(b) and a == b


def _deep_equal(a: JSON, b: JSON) -> bool:
    """JSON equality that keeps bools apart from numbers (Python's `True == 1` would not)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b  # evanphx compares numbers by value
    return type(a) is type(b) and a == b


def prune_nulls(value: JSON) -> JSON:
    """A copy without null-valued object members (recursing through arrays, whose null items stay)."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


# =============================================================================================
# RFC 6902 JSON patch
# =============================================================================================

_INDEX_RE = re.compile(r"^[+-]?[0-9]+$")


def _decode_pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f"invalid JSON pointer {path!r}: it must be empty or start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _container(doc: JSON, parts: list[str]) -> JSON | None:
    """The value holding the last part of `parts` (evanphx findObject), or None if absent."""
    cur: JSON = doc
    for part in parts[:-1]:
        if isinstance(cur, dict):
            if part not in cur:
                return None
            cur = cur[part]
        elif isinstance(cur, list):
            idx = _array_index(part, len(cur), allow_end=False)
            if idx is None:
                return None
            cur = cur[idx]
        else:
            return None
    return cur if isinstance(cur, (dict, list)) else None


def _array_index(key: str, length: int, *, allow_end: bool) -> int | None:
    """Resolve an array index like evanphx: decimal (leading sign allowed), negatives count from the end."""
    if not _INDEX_RE.match(key):
        return None
    idx = int(key)
    limit = length if allow_end else length - 1
    if idx > limit or idx < -length:
        return None
    return idx + length if idx < 0 else idx


def _index_error(key: str) -> PatchError:
    if not _INDEX_RE.match(key):
        return _unprocessable(f"value was not a proper array index: '{key}': invalid state detected")
    return _unprocessable(f"Unable to access invalid index: {int(key)}: invalid index referenced")


def _get(container: JSON, key: str) -> tuple[bool, JSON]:
    if isinstance(container, dict):
        return (key in container), container.get(key)
    if isinstance(container, list):
        idx = _array_index(key, len(container), allow_end=False)
        if idx is None:
            return False, None
        return True, container[idx]
    return False, None


def _add(doc: JSON, path: str, value: JSON) -> None:
    parts = _decode_pointer(path)
    con = _container(doc, parts) if parts else None
    if con is None:
        raise _unprocessable(f'add operation does not apply: doc is missing path: "{path}": missing value')
    key = parts[-1]
    if isinstance(con, dict):
        con[key] = value
        return
    assert isinstance(con, list)
    if key == "-":
        con.append(value)
        return
    idx = _array_index(key, len(con), allow_end=True)
    if idx is None:
        raise _index_error(key)
    con.insert(idx, value)


def _remove(doc: JSON, path: str) -> JSON:
    parts = _decode_pointer(path)
    con = _container(doc, parts) if parts else None
    if con is None:
        raise _unprocessable(f'remove operation does not apply: doc is missing path: "{path}": missing value')
    key = parts[-1]
    if isinstance(con, dict):
        if key not in con:
            raise _unprocessable(f"error in remove for path: '{path}': Unable to remove nonexistent key: {key}: "
                                 "missing value")
        return con.pop(key)
    assert isinstance(con, list)
    idx = _array_index(key, len(con), allow_end=False)
    if idx is None:
        raise _index_error(key)
    return con.pop(idx)


def _replace(doc: JSON, path: str, value: JSON) -> None:
    parts = _decode_pointer(path)
    con = _container(doc, parts) if parts else None
    if con is None:
        raise _unprocessable(f"replace operation does not apply: doc is missing path: {path}: missing value")
    key = parts[-1]
    if isinstance(con, dict):
        if key not in con:
            raise _unprocessable(f"replace operation does not apply: doc is missing key: {path}: missing value")
        con[key] = value
        return
    assert isinstance(con, list)
    idx = _array_index(key, len(con), allow_end=False)
    if idx is None:
        raise _index_error(key)
    con[idx] = value


def _test(doc: JSON, path: str, value: JSON) -> None:
    parts = _decode_pointer(path)
    if not parts:
        if _deep_equal(doc, value):
            return
        raise _unprocessable(f"testing value {path} failed: test failed")
    con = _container(doc, parts)
    if con is None:
        raise _unprocessable(f"test operation does not apply: is missing path: {path}: missing value")
    found, current = _get(con, parts[-1])
    if not found and value is None:
        return
    if found and _deep_equal(current, value):
        return
    raise _unprocessable(f"testing value {path} failed: test failed")


def _lookup(doc: JSON, path: str, op: str) -> JSON:
    parts = _decode_pointer(path)
    con = _container(doc, parts) if parts else None
    found, value = _get(con, parts[-1]) if con is not None else (False, None)
    if not found:
        raise _unprocessable(f"{op} operation does not apply: doc is missing from path: {path}: missing value")
    return value


def json_patch(doc: JSON, ops: object) -> JSON:
    """Apply an RFC 6902 patch (a decoded JSON array of operations) to a copy of `doc`."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise _bad_request("json: cannot unmarshal the patch: a JSON patch must be an array of operation objects")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
                         f"got {len(ops)}", 413)
    result = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        path = op.get("path", "")
        if not isinstance(path, str):
            raise _bad_request(f"json: the path of a JSON patch operation must be a string, got {path!r}")
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            _add(result, path, value)
        elif kind == "remove":
            _remove(result, path)
        elif kind == "replace":
            _replace(result, path, value)
        elif kind == "test":
            _test(result, path, value)
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            if not isinstance(source, str):
                raise _bad_request(f"json: the from of a JSON patch operation must be a string, got {source!r}")
            if kind == "move":
                _lookup(result, source, "move")
                moved = _remove(result, source)
            else:
                moved = copy.deepcopy(_lookup(result, source, "copy"))
            _add(result, path, moved)
        else:
            raise _unprocessable(f"Unexpected kind: {kind}")
    return result


# =============================================================================================
# RFC 7386 JSON merge patch
# =============================================================================================


def merge_patch(doc: JSON, patch: JSON) -> JSON:
    """Apply an RFC 7386 merge patch: members set to null are removed, objects merge, the rest replaces."""
    if patch is None or isinstance(patch, (bool, int, float, str)):
        raise _bad_request("Invalid JSON Patch")
    if isinstance(patch, list):
        return prune_nulls(patch)
    if not isinstance(doc, dict):
        return prune_nulls(patch)
    return _merge_objects(doc, patch)


def _merge_objects(doc: dict[str, JSON], patch: dict[str, JSON]) -> dict[str, JSON]:
    out = copy.deepcopy(doc)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
            continue
        current = out.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            out[key] = _merge_objects(current, value)
        else:
            # evanphx prunes nulls here except when an object is replaced by a non-object; we always
            # prune, which is what upstream's decode into typed structs ends up storing anyway.
            out[key] = prune_nulls(value)
    return out


# =============================================================================================
# Strategic merge patch
# =============================================================================================


@dataclasses.dataclass(frozen=True)
class Schema:
    """Patch metadata of one field, transcribed from the Go struct tags.

    `list_merge` is `patchStrategy:"merge"` on a list; `merge_key` its `patchMergeKey` (None for
    a list of primitives merged as a set). `fields` describes the children of an object (or of
    each element of a list of objects). Fields absent from `fields` are unknown to us: objects
    are merged recursively and lists replaced, which is what every untagged field does upstream.
    """

    fields: Mapping[str, Schema] = dataclasses.field(default_factory=dict)
    list_merge: bool = False
    merge_key: str | None = None

    def child(self, name: str) -> Schema:
        return self.fields.get(name, _EMPTY)


_EMPTY = Schema()


def _obj(**fields: Schema) -> Schema:
    return Schema(fields=fields)


def _merge_list(merge_key: str | None, element: Schema = _EMPTY) -> Schema:
    return Schema(fields=element.fields, list_merge=True, merge_key=merge_key)


# k8s.io/apimachinery/pkg/apis/meta/v1/types.go ObjectMeta:
#   Finalizers      `patchStrategy:"merge"`                        (a set of strings)
#   OwnerReferences `patchStrategy:"merge" patchMergeKey:"uid"`
_OBJECT_META = _obj(finalizers=_merge_list(None), ownerReferences=_merge_list("uid"))

# k8s.io/api/core/v1/types.go Container (and EphemeralContainerCommon):
#   Ports         `patchStrategy:"merge" patchMergeKey:"containerPort"`
#   Env           `patchStrategy:"merge" patchMergeKey:"name"`
#   VolumeMounts  `patchStrategy:"merge" patchMergeKey:"mountPath"`
#   VolumeDevices `patchStrategy:"merge" patchMergeKey:"devicePath"`
#   EnvFrom, Command, Args, ResizePolicy: no strategy -> replaced
_CONTAINER = _obj(
    ports=_merge_list("containerPort"),
    env=_merge_list("name"),
    volumeMounts=_merge_list("mountPath"),
    volumeDevices=_merge_list("devicePath"),
)

# PodSpec:
#   Volumes                   `patchStrategy:"merge,retainKeys" patchMergeKey:"name"`
#   InitContainers/Containers/EphemeralContainers `patchStrategy:"merge" patchMergeKey:"name"`
#   ImagePullSecrets          `patchStrategy:"merge" patchMergeKey:"name"`
#   HostAliases               `patchStrategy:"merge" patchMergeKey:"ip"`
#   TopologySpreadConstraints `patchStrategy:"merge" patchMergeKey:"topologyKey"`
#   SchedulingGates           `patchStrategy:"merge" patchMergeKey:"name"`
#   ResourceClaims            `patchStrategy:"merge,retainKeys" patchMergeKey:"name"`
#   Tolerations, ReadinessGates: no strategy -> replaced
_POD_SPEC = _obj(
    volumes=_merge_list("name"),
    initContainers=_merge_list("name", _CONTAINER),
    containers=_merge_list("name", _CONTAINER),
    ephemeralContainers=_merge_list("name", _CONTAINER),
    imagePullSecrets=_merge_list("name"),
    hostAliases=_merge_list("ip"),
    topologySpreadConstraints=_merge_list("topologyKey"),
    schedulingGates=_merge_list("name"),
    resourceClaims=_merge_list("name"),
)

# PodStatus: Conditions `patchMergeKey:"type"`; PodIPs/HostIPs `patchMergeKey:"ip"`;
# ResourceClaimStatuses `patchMergeKey:"name"`; ContainerStatuses: no strategy -> replaced.
_POD_STATUS = _obj(
    conditions=_merge_list("type"),
    podIPs=_merge_list("ip"),
    hostIPs=_merge_list("ip"),
    resourceClaimStatuses=_merge_list("name"),
)

_CONDITIONS_STATUS = _obj(conditions=_merge_list("type"))

SCHEMAS: Mapping[str, Schema] = {
    "Pod": _obj(metadata=_OBJECT_META, spec=_POD_SPEC, status=_POD_STATUS),
    # apps/v1 StatefulSetSpec.Template is a PodTemplateSpec; VolumeClaimTemplates has no strategy;
    # StatefulSetStatus.Conditions `patchStrategy:"merge" patchMergeKey:"type"`.
    "StatefulSet": _obj(
        metadata=_OBJECT_META,
        spec=_obj(template=_obj(metadata=_OBJECT_META, spec=_POD_SPEC)),
        status=_CONDITIONS_STATUS,
    ),
    # NodeSpec.PodCIDRs `patchStrategy:"merge"` (set); Taints: replaced.
    # NodeStatus.Conditions and .Addresses `patchStrategy:"merge" patchMergeKey:"type"`.
    "Node": _obj(
        metadata=_OBJECT_META,
        spec=_obj(podCIDRs=_merge_list(None)),
        status=_obj(conditions=_merge_list("type"), addresses=_merge_list("type")),
    ),
    "PersistentVolumeClaim": _obj(metadata=_OBJECT_META, status=_CONDITIONS_STATUS),
    # ServiceSpec.Ports `patchStrategy:"merge" patchMergeKey:"port"` (not containerPort!).
    "Service": _obj(metadata=_OBJECT_META, spec=_obj(ports=_merge_list("port")), status=_CONDITIONS_STATUS),
    "Namespace": _obj(metadata=_OBJECT_META, status=_CONDITIONS_STATUS),
    "PodDisruptionBudget": _obj(metadata=_OBJECT_META, status=_CONDITIONS_STATUS),
}
"""Patch metadata per kind; a kind not listed gets the ObjectMeta rules only."""

_DEFAULT_SCHEMA = _obj(metadata=_OBJECT_META)

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_PRIMITIVE_LIST_FORMAT = "invalid patch format of primitive list"
ERR_RETAIN_KEYS_FORMAT = "invalid patch format of retainKeys"
ERR_SET_ELEMENT_ORDER_FORMAT = "invalid patch format of setElementOrder list"


def schema_for(kind: str) -> Schema:
    return SCHEMAS.get(kind, _DEFAULT_SCHEMA)


def strategic_merge_patch(doc: JSON, patch: JSON, kind: str) -> JSON:
    """Apply a strategic merge patch to a copy of `doc`, using the patch metadata of `kind`."""
    if not isinstance(doc, dict):
        raise _bad_request(ERR_BAD_JSON_DOC)
    if not isinstance(patch, dict):
        raise _bad_request(ERR_BAD_JSON_DOC)
    return _merge_map(copy.deepcopy(doc), copy.deepcopy(patch), schema_for(kind))


def _go_repr(value: JSON) -> str:
    """How Go's %v prints decoded JSON (maps with sorted keys), for error messages."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_repr(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_repr(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _no_merge_key(item: Mapping[str, JSON], key: str) -> PatchError:
    return _internal(f"map: {_go_repr(dict(item))} does not contain declared merge key: {key}")


def _merge_map(original: dict[str, JSON], patch: dict[str, JSON], schema: Schema) -> dict[str, JSON]:
    """mergeMap: directives first, then every key of the patch into `original` (both owned by us)."""
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            del patch[DIRECTIVE]
            return _strip_directives(patch, schema)
        if directive == "delete":
            return {}
        raise _internal(f"unknown patch type: {_go_repr(directive)} in map: {_go_repr(patch)}")

    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, schema)

    # `$deleteFromPrimitiveList/<f>` runs before the plain keys so a value both deleted and added
    # ends up present (upstream iterates a Go map, so its order there is unspecified).
    deletions = [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST)]
    for key in deletions:
        _apply_primitive_deletion(original, key, patch.pop(key), schema)

    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
            continue
        child = schema.child(key)
        if key not in original or original[key] is None:
            original[key] = _fresh_value(value, child)
            continue
        current = original[key]
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, child)
        elif isinstance(current, list) and isinstance(value, list):
            original[key] = _merge_list_field(current, value, child)
        else:
            original[key] = prune_nulls(value)
    return original


def _fresh_value(value: JSON, schema: Schema) -> JSON:
    """A patch value for a key the original lacks: merged into an empty value so directives are honoured.

    Upstream copies such values verbatim (minus nulls); for values without directives the result is
    the same, and a `$patch` directive inside a brand-new value is resolved instead of stored.
    """
    if isinstance(value, dict):
        return _merge_map({}, value, schema)
    if isinstance(value, list) and schema.list_merge:
        return _merge_list_field([], value, schema)
    return prune_nulls(value)


def _strip_directives(patch: dict[str, JSON], schema: Schema) -> dict[str, JSON]:
    """`$patch: replace` keeps the patch as given; nested directives are still resolved, nulls dropped."""
    return _merge_map({}, patch, schema)


def _apply_retain_keys(original: dict[str, JSON], patch: dict[str, JSON]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _bad_request(ERR_RETAIN_KEYS_FORMAT)
    keep = {k for k in retain if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise _bad_request(ERR_RETAIN_KEYS_FORMAT)
    for key in list(original):
        if key not in keep:
            del original[key]


def _directive_target(key: str, prefix: str, error: str) -> str:
    head, sep, target = key.partition("/")
    if head != prefix or not sep:
        raise _bad_request(error)
    return target


def _apply_primitive_deletion(original: dict[str, JSON], key: str, value: JSON, schema: Schema) -> None:
    target = _directive_target(key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST_FORMAT)
    if not isinstance(value, list):
        raise _bad_request(ERR_PRIMITIVE_LIST_FORMAT)
    current = original.get(target)
    if not isinstance(current, list):
        return  # nothing to delete from (upstream skips a missing or differently-typed field)
    if not schema.child(target).list_merge:
        original[target] = copy.deepcopy(value)  # upstream's mergeSliceHandler replaces non-merge lists
        return
    original[target] = [item for item in current if not any(_same(item, d) for d in value)]


def _apply_set_element_order(original: dict[str, JSON], patch: dict[str, JSON], schema: Schema) -> None:
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_request(ERR_SET_ELEMENT_ORDER_FORMAT)
        target = _directive_target(key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER_FORMAT)
        child = schema.child(target)
        if not child.list_merge:
            continue  # a replaced list simply takes the patch's order
        current = original.get(target)
        incoming = patch.get(target)
        if current is not None and not isinstance(current, list):
            raise _internal(f"expected a []interface {{}}, but received a {type(current).__name__}")
        if incoming is not None and not isinstance(incoming, list):
            raise _internal(f"expected a []interface {{}}, but received a {type(incoming).__name__}")
        if current is None and incoming is None:
            continue
        if isinstance(incoming, list):
            _check_order_consistent(incoming, order, child.merge_key)
            merged = _merge_list_field(current or [], incoming, child)
            del patch[target]
        else:
            merged = list(current or [])
        patch_items, server_only = _partition(merged, order, child.merge_key)
        original[target] = _normalize_order(patch_items, server_only, order, current or [], child.merge_key)


def _check_order_consistent(patch_list: list[JSON], order: list[JSON], merge_key: str | None) -> None:
    """validatePatchWithSetOrderList: patch items must appear in the same relative order as in the directive."""
    items = [p for p in patch_list if not (isinstance(p, dict) and DIRECTIVE in p)]
    i = j = 0
    while i < len(items) and j < len(order):
        if _key_equal(items[i], order[j], merge_key):
            i += 1
        j += 1
    if i < len(items):
        raise _internal(f"The order in patch list: {_go_repr(patch_list)} doesn't match {SET_ELEMENT_ORDER} list: "
                        f"{_go_repr(order)}")


def _key_of(item: JSON, merge_key: str | None) -> JSON:
    if merge_key is None:
        return item
    if not isinstance(item, dict):
        raise _internal(f"expected a map[string]interface {{}}, but received a {type(item).__name__}")
    if merge_key not in item:
        raise _no_merge_key(item, merge_key)
    return item[merge_key]


def _key_equal(a: JSON, b: JSON, merge_key: str | None) -> bool:
    return _same(_key_of(a, merge_key), _key_of(b, merge_key))


def _index(items: Sequence[JSON], item: JSON, merge_key: str | None) -> int:
    wanted = item.get(merge_key) if (merge_key is not None and isinstance(item, dict)) else item
    for i, candidate in enumerate(items):
        have = candidate.get(merge_key) if (merge_key is not None and isinstance(candidate, dict)) else candidate
        if _same(have, wanted):
            return i
    return -1


def _partition(merged: list[JSON], by: list[JSON], merge_key: str | None) -> tuple[list[JSON], list[JSON]]:
    """Split merged items into those present in `by` and the server-only rest, keeping order."""
    present: list[JSON] = []
    server_only: list[JSON] = []
    for item in merged:
        key = _key_of(item, merge_key)
        found = any(_same(key, _key_of(b, merge_key)) for b in by
                    if merge_key is None or (isinstance(b, dict) and merge_key in b))
        (present if found else server_only).append(item)
    return present, server_only


def _normalize_order(patch_items: list[JSON], server_only: list[JSON], patch_order: list[JSON],
                     server_order: list[JSON], merge_key: str | None) -> list[JSON]:
    """normalizeElementOrder + mergeSortedSlice: patch order for patch items, live order for the rest.

    Server-only items are emitted before a patch item only when both appear in the live list and the
    server item came first there; a patch item the live list lacks is emitted as soon as it is reached.
    """
    patch_sorted = sorted(patch_items, key=lambda it: _index(patch_order, it, merge_key))
    server_sorted = sorted(server_only, key=lambda it: _index(server_order, it, merge_key))
    out: list[JSON] = []
    i = j = 0
    while i < len(server_sorted) or j < len(patch_sorted):
        if j >= len(patch_sorted):
            out.append(server_sorted[i])
            i += 1
        elif i >= len(server_sorted):
            out.append(patch_sorted[j])
            j += 1
        else:
            li = _index(server_order, server_sorted[i], merge_key)
            ri = _index(server_order, patch_sorted[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_sorted[i])
                i += 1
            else:
                out.append(patch_sorted[j])
                j += 1
    return out


def _element_kind(*lists: list[JSON]) -> Literal["map", "scalar", "empty"]:
    """sliceElementType: every element of both lists must share one type, and not be a list."""
    seen: type | None = None
    for items in lists:
        for item in items:
            if isinstance(item, list):
                raise _unprocessable(ERR_NO_LIST_OF_LISTS)
            kind = dict if isinstance(item, dict) else type(item)
            if seen is None:
                seen = kind
            elif seen is not kind:
                raise _internal(f"list element types are not identical: {_go_repr(lists[0])} {_go_repr(lists[-1])}")
    if seen is None:
        return "empty"
    return "map" if seen is dict else "scalar"


def _merge_list_field(original: list[JSON], patch: list[JSON], schema: Schema) -> list[JSON]:
    """mergeSliceHandler/mergeSlice for one list field."""
    if not schema.list_merge:
        return [prune_nulls(item) for item in patch]
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    merge_key = schema.merge_key
    if kind == "scalar":
        merged: list[JSON] = []
        for item in [*original, *patch]:
            if not any(_same(item, m) for m in merged):
                merged.append(item)
        patch_items, server_only = _partition(merged, patch, None)
        return _normalize_order(patch_items, server_only, patch, original, None)
    if merge_key is None:
        raise _internal("cannot merge lists without merge key for type map")
    original, plain_patch = _apply_list_directives(original, patch, merge_key)
    merged = _merge_by_key(original, plain_patch, merge_key, schema)
    patch_items, server_only = _partition(merged, plain_patch, merge_key)
    return _normalize_order(patch_items, server_only, plain_patch, original, merge_key)


def _apply_list_directives(original: list[JSON], patch: list[JSON],
                           merge_key: str) -> tuple[list[JSON], list[JSON]]:
    """mergeSliceWithSpecialElements: `$patch: delete` items remove matches; `$patch: replace` drops the rest."""
    plain: list[JSON] = []
    replace = False
    for item in patch:
        assert isinstance(item, dict)
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            wanted = item[merge_key]
            original = [o for o in original if not (isinstance(o, dict) and _same(o.get(merge_key), wanted))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {_go_repr(directive)} in map: {_go_repr(item)}")
    if replace:
        return [prune_nulls(p) for p in plain], []
    return original, plain


def _merge_by_key(original: list[JSON], patch: list[JSON], merge_key: str, schema: Schema) -> list[JSON]:
    """mergeSliceWithoutSpecialElements: merge items sharing the key's value, append the others."""
    out = list(original)
    element_schema = Schema(fields=schema.fields)
    for item in patch:
        assert isinstance(item, dict)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        wanted = item[merge_key]
        for pos, existing in enumerate(out):
            if not isinstance(existing, dict):
                raise _internal(f"value for key {pos} is not a map.")
            if merge_key in existing and _same(existing[merge_key], wanted):
                out[pos] = _merge_map(existing, item, element_schema)
                break
        else:
            out.append(_merge_map({}, item, element_schema))
    return out
