"""ControllerRevision history for StatefulSets: naming, hashing, equality, rollback reuse, truncation.

Facts from upstream `pkg/controller/history/controller_history.go` and `stateful_set_utils.go`:

* A revision's `data` is the patch that restores the pod template:
  `{"spec": {"template": {..., "$patch": "replace"}}}` (getPatch).
* Its name is `<set>-<hash>` where hash = FNV-1 (32 bit, not 1a) over the JSON bytes of `data`,
  then the decimal collisionCount if one is given, printed in decimal and passed through
  rand.SafeEncodeString (each digit mapped into "bcdfghjklmnpqrstvwxz2456789"). The hash is also
  the label `controller.kubernetes.io/hash`; the revision carries the template's labels and the
  set's annotations, and a controller ownerReference to the set.
* Equal data → the same revision: if it is already the newest nothing changes, otherwise its
  `revision` number is bumped to the next one (this is how a rollback reuses history).
* truncateHistory keeps the current and update revisions and every revision a pod still carries,
  and deletes the oldest others beyond revisionHistoryLimit.

The JSON bytes are Go's encoding/json of a map (keys sorted, compact, `<`, `>`, `&` escaped) over
the template as kubesim stores it, with `metadata.creationTimestamp: null` as Go emits it. Hashes
match a real cluster only when the stored template has exactly the fields the Go types would
emit; inside kubesim they are stable and deterministic, which is what the algorithm needs.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubesim.controllers import statefulset_utils as su

Obj = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv1_32(data: bytes) -> int:
    """hash/fnv New32 (FNV-1: multiply, then xor)."""
    value = _FNV32_OFFSET
    for byte in data:
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    """apimachinery rand.SafeEncodeString: avoid vowels (and so words) in generated names."""
    return "".join(_SAFE_ALPHANUMS[ord(c) % len(_SAFE_ALPHANUMS)] for c in text)


def go_json(value: object) -> bytes:
    """encoding/json.Marshal of a map[string]interface{}: sorted keys, compact, HTML-escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def template_patch(sts: Mapping[str, Any]) -> Obj:
    """getPatch: the data that re-applies `sts`'s pod template with a strategic-merge replace."""
    template = copy.deepcopy(dict(su.spec(sts).get("template") or {}))
    metadata = template.setdefault("metadata", {})
    metadata.setdefault("creationTimestamp", None)
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def hash_data(data: object, collision_count: int | None) -> str:
    raw = go_json(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv1_32(raw)))


def revision_name(set_name: str, hash_value: str) -> str:
    """ControllerRevisionName: the prefix is cut at 223 characters so the name fits 253."""
    return f"{set_name[:223]}-{hash_value}"


def new_revision(sts: Mapping[str, Any], number: int, collision_count: int) -> Obj:
    """newRevision: an unsaved ControllerRevision for `sts`'s current template."""
    data = template_patch(sts)
    hash_value = hash_data(data, collision_count)
    template = su.spec(sts).get("template")
    tlabels = su.labels_of(template) if isinstance(template, Mapping) else {}
    labels = {**tlabels, HASH_LABEL: hash_value}
    metadata: Obj = {
        "name": revision_name(su.name_of(sts), hash_value),
        "namespace": su.namespace_of(sts),
        "labels": labels,
        "ownerReferences": [su.controller_ref_to(sts, su.SET_API_VERSION, su.SET_KIND)],
    }
    annotations = su.meta(sts).get("annotations")
    if isinstance(annotations, Mapping) and annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": data, "revision": number}


def revision_number(rev: Mapping[str, Any]) -> int:
    value = rev.get("revision")
    return int(value) if isinstance(value, int) else 0


def sort_revisions(revisions: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """By revision number, then creation time, then name (byRevision)."""
    return sorted(revisions, key=lambda r: (revision_number(r), str(su.meta(r).get("creationTimestamp") or ""),
                                            su.name_of(r)))


def next_revision(revisions: Sequence[Mapping[str, Any]]) -> int:
    return revision_number(revisions[-1]) + 1 if revisions else 1


def equal_revision(lhs: Mapping[str, Any], rhs: Mapping[str, Any]) -> bool:
    """EqualRevision: differing hash labels settle it; otherwise the data must be identical."""
    lhs_hash, rhs_hash = su.labels_of(lhs).get(HASH_LABEL), su.labels_of(rhs).get(HASH_LABEL)
    if lhs_hash and rhs_hash and lhs_hash != rhs_hash:
        return False
    return go_json(lhs.get("data")) == go_json(rhs.get("data"))


def find_equal(revisions: Sequence[Mapping[str, Any]], needle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in revisions if equal_revision(r, needle)]


def apply_revision(sts: Mapping[str, Any], revision: Mapping[str, Any]) -> Obj:
    """ApplyRevision: `sts` with its pod template replaced by the one the revision recorded."""
    out: Obj = copy.deepcopy(dict(sts))
    data = revision.get("data")
    template = data.get("spec", {}).get("template") if isinstance(data, Mapping) else None
    if isinstance(template, Mapping):
        restored = {k: copy.deepcopy(v) for k, v in template.items() if k != "$patch"}
        rmeta = restored.get("metadata")
        if isinstance(rmeta, dict) and rmeta.get("creationTimestamp") is None:
            rmeta.pop("creationTimestamp", None)
        out.setdefault("spec", {})["template"] = restored
    return out


def owned_revisions(sts: Mapping[str, Any], revisions: Iterable[Mapping[str, Any]],
                    selector_matches: Any) -> list[Mapping[str, Any]]:
    """ListControllerRevisions: matching the selector and owned by `sts` or by no controller."""
    out: list[Mapping[str, Any]] = []
    for rev in revisions:
        if su.namespace_of(rev) != su.namespace_of(sts) or not selector_matches(su.labels_of(rev)):
            continue
        ref = su.controller_ref(rev)
        if ref is None or ref.get("uid") == su.uid_of(sts):
            out.append(rev)
    return out


def revisions_to_delete(sts: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]], live: Iterable[str]) -> list[
        Mapping[str, Any]]:
    """truncateHistory: the oldest non-live revisions beyond revisionHistoryLimit (`revisions` sorted)."""
    live_names = set(live)
    history = [r for r in revisions if su.name_of(r) not in live_names]
    limit_raw = su.spec(sts).get("revisionHistoryLimit")
    limit = int(limit_raw) if isinstance(limit_raw, int) else 10
    if limit < 0 or len(history) <= limit:
        return []
    return history[: len(history) - limit]
