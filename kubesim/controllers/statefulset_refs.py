"""Which pods a StatefulSet owns, adopts and releases: ControllerRefManager.ClaimPods semantics.

Upstream (`pkg/controller/controller_ref_manager.go`, used by `stateful_set.go` getPodsForStatefulSet
with the filter isMemberOf): a pod is *matched* when the selector matches its labels and its name
is `<set>-<ordinal>`.

* Owned by this set (controller ref uid = set uid): kept if matched; otherwise released (the
  controller ref removed) unless the set itself is being deleted.
* Owned by another controller: ignored.
* Orphan: adopted (a controller ref added) if matched, the set is not being deleted and the pod is
  not being deleted — after re-reading the set from the API server to make sure it is the same
  object and still alive (RecheckDeletionTimestamp).

The patches are strategic-merge patches on `metadata.ownerReferences` keyed by uid, carrying the
pod's uid as a precondition, as upstream sends them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from kubesim.apiserver import selectors
from kubesim.controllers import statefulset_utils as su

Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Claim:
    owned: tuple[Mapping[str, Any], ...]
    adopt: tuple[Mapping[str, Any], ...]
    release: tuple[Mapping[str, Any], ...]


def classify(sts: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], selector: selectors.LabelSelector) -> Claim:
    set_uid = su.uid_of(sts)
    set_deleting = bool(su.meta(sts).get("deletionTimestamp"))
    owned: list[Mapping[str, Any]] = []
    adopt: list[Mapping[str, Any]] = []
    release: list[Mapping[str, Any]] = []
    for pod in pods:
        if su.namespace_of(pod) != su.namespace_of(sts):
            continue
        matched = selector.matches(su.labels_of(pod)) and su.is_member_of(sts, pod)
        ref = su.controller_ref(pod)
        if ref is not None:
            if ref.get("uid") != set_uid:
                continue
            if matched:
                owned.append(pod)
            elif not set_deleting:
                release.append(pod)
            continue
        if set_deleting or not matched or su.is_terminating(pod):
            continue
        adopt.append(pod)
    return Claim(tuple(owned), tuple(adopt), tuple(release))


def adopt_patch(sts: Mapping[str, Any], obj: Mapping[str, Any]) -> Obj:
    return {"metadata": {"ownerReferences": [su.controller_ref_to(sts, su.SET_API_VERSION, su.SET_KIND)],
                         "uid": su.uid_of(obj)}}


def release_patch(sts: Mapping[str, Any], obj: Mapping[str, Any]) -> Obj:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": su.uid_of(sts)}],
                         "uid": su.uid_of(obj)}}
