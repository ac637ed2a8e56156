"""The generic verbs (get, create, update, patch) with upstream's metadata bookkeeping.

Mirrors ``staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go`` and
``pkg/registry/rest/{create,update}.go``: uid / creationTimestamp / generation are the server's,
a PUT carrying a stale resourceVersion is a Conflict, the main resource ignores status and the
``/status`` subresource ignores everything but status, and an update that changes nothing is
not written (same resourceVersion, no watch event) — clients such as ``kubectl apply`` rely on
that to be idempotent.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kubesim import servicenet, timestamps
from kubesim.apiserver import (
    admission,
    errors,
    eventsconv,
    fieldcheck,
    fielderrors,
    kinds,
    patch,
    plugins,
    resources,
    serviceips,
    store,
)

Query = Mapping[str, str]
Obj = dict[str, Any]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

APPLY_PATCH = "application/apply-patch+yaml"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_GENERATED_NAME_PREFIX = 58


@dataclasses.dataclass(frozen=True)
class Target:
    """What a request URL names: a resource, maybe a namespace, maybe an object and a subresource."""

    resource: resources.Resource
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def rkey(self) -> str:
        return kinds.storage_key(self.resource)


now = timestamps.now


def _summary(body: bytes, limit: int = 30) -> str:
    """handlers' summarizeData: JSON-looking bodies as text, anything else as hex, cut at ``limit``."""
    if not body:
        return "<empty>"
    cut = body[:limit]
    text = cut.decode("utf-8", "replace") if body[:1] == b"{" else cut.hex()
    return text + " ..." if len(body) > limit else text


def decode(body: bytes, kind: str = "") -> Obj:
    """Parse a request body; malformed JSON or a non-object is a 400 worded as transformDecodeError does."""
    why = ""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        why = f"couldn't get version/kind; json parse error: {exc}"
    else:
        if not isinstance(obj, dict):
            why = f"couldn't get version/kind; json parse error: cannot unmarshal {type(obj).__name__} into an object"
    if why:
        if kind:
            why = f"the object provided is unrecognized (must be of type {kind}): {why} ({_summary(body)})"
        raise errors.bad_request(why)
    return dict(obj)


def check_type(obj: Obj, api_version: str, kind: str) -> None:
    """The body must be of the URL's type; missing apiVersion/kind default to it (as upstream decodes)."""
    got_api = obj.get("apiVersion") or api_version
    got_kind = obj.get("kind") or kind
    if not isinstance(got_api, str) or not isinstance(got_kind, str):
        raise errors.bad_request("apiVersion and kind must be strings")
    if got_api != api_version:
        raise errors.bad_request(
            f"the API version in the data ({got_api}) does not match the expected API version ({api_version})"
        )
    if got_kind != kind:
        # handlers' transformDecodeError: "<Kind> in version <v> cannot be handled as a <Kind>: <why>"
        version = got_api.rpartition("/")[2]
        raise errors.bad_request(
            f'{got_kind} in version "{version}" cannot be handled as a {kind}: '
            f"the kind in the data ({got_kind}) does not match the expected kind ({kind})"
        )
    obj["apiVersion"] = api_version
    obj["kind"] = kind


def metadata_of(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    return meta


class Api:
    """The verbs over one :class:`store.Store`."""

    service_ips: serviceips.Allocator = serviceips.for_network(servicenet.default())
    """ClusterIPs come from here (the API server process sets its cluster's range, :mod:`kubesim.servicenet`)."""

    def __init__(self, db: store.Store, clock: Callable[[], str] = now,
                 admission_base: admission.AdmissionConfig | None = None) -> None:
        self.store = db
        self.clock = clock
        self.admission_base = admission_base or admission.AdmissionConfig()
        self.admission_plugins: list[plugins.Plugin] = []
        """Stateful admission (ServiceAccount, RBAC escalation) the API server registers (:mod:`.plugins`)."""

    def admission_config(self) -> admission.AdmissionConfig:
        """What the mutating plugins need from cluster state: the default StorageClass (newest wins, as upstream)."""
        chosen: tuple[str, str] | None = None
        items, _rv = self.store.scan("storage.k8s.io/storageclasses", None)
        for (_ns, name), entry in items:
            meta = entry.obj.get("metadata") or {}
            annotations = meta.get("annotations") or {}
            if annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
                created = str(meta.get("creationTimestamp") or "")
                if chosen is None or created > chosen[0]:
                    chosen = (created, name)
        return dataclasses.replace(self.admission_base, default_storage_class=chosen[1] if chosen else None)

    # ----- presentation ---------------------------------------------------------------------

    @staticmethod
    def present(res: resources.Resource, entry: store.Entry) -> bytes:
        if res.group == "events.k8s.io":
            return store.dumps(eventsconv.from_core(entry.obj))
        return entry.raw

    @staticmethod
    def present_obj(res: resources.Resource, obj: Obj) -> bytes:
        if res.group == "events.k8s.io":
            return store.dumps(eventsconv.from_core(obj))
        return store.dumps(obj)

    @staticmethod
    def ingest(res: resources.Resource, obj: Obj, query: Query) -> tuple[Obj, str, str]:
        """Check a request body's type and fields and convert it to its stored form.

        Returns it with the stored apiVersion and kind; unknown fields are handled per
        ``fieldValidation`` (see :mod:`kubesim.apiserver.fieldcheck`).
        """
        check_type(obj, res.api_version, res.kind)
        fieldcheck.enforce(res.group, res.kind, res.api_version, obj, query)
        if res.group == "events.k8s.io":
            return eventsconv.to_core(obj), "v1", "Event"
        return obj, res.api_version, res.kind

    # ----- reads ----------------------------------------------------------------------------

    def lookup(self, t: Target) -> store.Entry:
        entry = self.store.get(t.rkey, t.namespace, t.name)
        if entry is None:
            raise errors.not_found(t.resource.group, t.resource.plural, t.name)
        return entry

    def get(self, t: Target) -> bytes:
        return self.present(t.resource, self.lookup(t))

    # ----- create ---------------------------------------------------------------------------

    def require_namespace(self, namespace: str, res: resources.Resource, name: str) -> None:
        ns = self.store.get("core/namespaces", "", namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        terminating = ns.obj.get("status", {}).get("phase") == "Terminating"
        if ns.obj.get("metadata", {}).get("deletionTimestamp") or terminating:
            err = errors.forbidden(
                res.group, res.plural, name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
            err.details = dict(err.details or {})
            err.details["causes"] = [{
                "reason": "NamespaceTerminating",
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace",
            }]
            raise err

    def create(self, t: Target, body: bytes, query: Query) -> tuple[int, bytes]:
        obj, _api_version, kind = self.ingest(t.resource, decode(body, t.resource.kind), query)
        return self.create_obj(t, obj, kind, query)

    def create_obj(self, t: Target, obj: Obj, kind: str, query: Query) -> tuple[int, bytes]:
        """Create an already-decoded object in its stored form."""
        res = t.resource
        meta = metadata_of(obj)
        if res.namespaced:
            ns = meta.get("namespace") or t.namespace
            if ns != t.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.internal("resourceVersion should not be set on objects to be created")
        generate = meta.get("generateName")
        if not meta.get("name") and not generate:
            raise errors.invalid(res.group, kind, "", [
                fielderrors.FieldError(type="FieldValueRequired", field="metadata.name",
                                       detail="name or generateName is required", value="")
            ])
        self.prepare_for_create(kind, res, obj)
        obj = admission.apply_defaults(kind, obj)
        obj = admission.apply_create_status(kind, obj)
        obj = admission.apply_admission_mutations(kind, obj, self.admission_config())
        for plugin in self.admission_plugins:
            obj = plugin.admit_create(res, kind, obj)
        meta = metadata_of(obj)
        dry_run = query.get("dryRun") == "All"
        with self.store.write_lock:
            if res.namespaced:
                self.require_namespace(meta["namespace"], res, str(meta.get("name") or generate))
            # Only a name the server generated is retried on collision (upstream BeforeCreate ignores
            # generateName when a name is given: a StatefulSet pod that exists must be AlreadyExists).
            generated = bool(generate) and not meta.get("name")
            for _attempt in range(8):
                if generated:
                    prefix = str(generate)[:_MAX_GENERATED_NAME_PREFIX]
                    meta["name"] = prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                errs = admission.validate_create(kind, obj)
                if errs:
                    raise errors.invalid(res.group, kind, str(meta.get("name", "")), errs)
                if self.store.get(t.rkey, meta.get("namespace", ""), meta["name"]) is None:
                    if kind == "Service":  # the registry allocates after validation, under the write lock
                        self.service_ips.prepare_create(obj, self._cluster_ips_in_use())
                        errs = admission.validate_create(kind, obj)
                        if errs:
                            raise errors.invalid(res.group, kind, str(meta.get("name", "")), errs)
                    break
                if not generated:
                    raise errors.already_exists(res.group, res.plural, meta["name"])
            else:
                raise errors.already_exists(res.group, res.plural, meta["name"])
            if dry_run:
                return 201, self.present_obj(res, obj)
            entry = self.store.put(t.rkey, obj, None)
        return 201, self.present(res, entry)

    def _cluster_ips_in_use(self) -> set[str]:
        items, _rv = self.store.scan("core/services", None)
        return {ip for _key, entry in items for ip in serviceips.cluster_ips(entry.obj)}

    def prepare_for_create(self, kind: str, res: resources.Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.clock()
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "resourceVersion"):
            meta.pop(key, None)
        if kind in kinds.GENERATION_KINDS:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if kinds.has_status(res) and kind not in kinds.STATUS_ON_CREATE:
            # The zero status as upstream serialises it: non-omitempty fields appear as 0
            # (typed clients require them, e.g. V1StatefulSetStatus.replicas).
            obj["status"] = json.loads(json.dumps(kinds.INITIAL_STATUS.get(kind, {})))
        if kind == "Pod":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif kind == "Namespace":
            obj["status"] = {"phase": "Active"}
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict):
                spec.setdefault("finalizers", ["kubernetes"])
        elif kind in ("PersistentVolumeClaim", "PersistentVolume"):
            obj.setdefault("status", {}).setdefault("phase", "Pending")

    # ----- update ---------------------------------------------------------------------------

    def update(self, t: Target, body: bytes, query: Query) -> tuple[int, bytes]:
        res = t.resource
        obj, _api_version, kind = self.ingest(res, decode(body, res.kind), query)
        meta = metadata_of(obj)
        body_ns = meta.get("namespace") or ""
        if res.namespaced and body_ns and body_ns != t.namespace:
            raise errors.bad_request(
                f"the namespace of the object ({body_ns}) does not match the namespace on the request ({t.namespace})"
            )
        if meta.get("name") != t.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({t.name})"
            )
        if res.namespaced:
            meta["namespace"] = t.namespace
        with self.store.write_lock:
            old = self.store.get(t.rkey, t.namespace, t.name)
            if old is None:
                if (res.group, res.plural) in kinds.CREATE_ON_UPDATE and not t.subresource:
                    meta.pop("resourceVersion", None)
                    return self.create_obj(t, obj, kind, query)
                raise errors.not_found(res.group, res.plural, t.name)
            entry = self.apply_update(t, old, obj, kind, status_only=t.subresource == "status",
                                      dry_run=query.get("dryRun") == "All")
        return 200, self.present(res, entry)

    def apply_update(self, t: Target, old: store.Entry, new: Obj, kind: str, *, status_only: bool,
                     dry_run: bool = False) -> store.Entry:
        """Validate and store ``new`` as the next version of ``old`` (caller holds the write lock)."""
        res = t.resource
        meta = metadata_of(new)
        old_meta = old.obj["metadata"]
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta.get("resourceVersion"):
            raise errors.stale(res.group, res.plural, t.name)
        uid = meta.get("uid")
        if uid and uid != old_meta.get("uid"):
            raise errors.conflict(res.group, res.plural, t.name, f"Precondition failed: UID in precondition: {uid}, "
                                  f"UID in object meta: {old_meta.get('uid')}")
        if status_only:
            merged: Obj = json.loads(old.raw)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            meta = new["metadata"]
        else:
            for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                        "generation", "selfLink"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta["name"] = old_meta["name"]
            if "namespace" in old_meta:
                meta["namespace"] = old_meta["namespace"]
            if kinds.has_status(res):
                if "status" in old.obj:
                    new["status"] = json.loads(store.dumps(old.obj["status"]))
                else:
                    new.pop("status", None)
            if kind == "Namespace":
                # namespace strategy: spec.finalizers change only through /finalize
                old_finalizers = (old.obj.get("spec") or {}).get("finalizers")
                if not isinstance(new.get("spec"), dict):
                    new["spec"] = {}
                spec: Obj = new["spec"]
                if old_finalizers is None:
                    spec.pop("finalizers", None)
                else:
                    spec["finalizers"] = list(old_finalizers)
        if kind == "Service" and not status_only:
            serviceips.prepare_update(new, old.obj)
        new = admission.apply_defaults(kind, new)
        meta = new["metadata"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        errs = list(admission.validate_update(kind, old.obj, new))
        errs.extend(_finalizer_errors(old.obj, new))
        if errs:
            raise errors.invalid(res.group, kind, t.name, errs)
        if not status_only:
            for plugin in self.admission_plugins:
                plugin.admit_update(res, kind, old.obj, new)
        if kind in kinds.GENERATION_KINDS and new.get("spec") != old.obj.get("spec"):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        if new == old.obj:
            return old
        if dry_run:
            return store.Entry(new, store.dumps(new), old.rv)
        if removable(new):
            return self.store.remove(t.rkey, new)
        return self.store.put(t.rkey, new, old)

    # ----- patch ----------------------------------------------------------------------------

    def patch(self, t: Target, content_type: str, body: bytes, query: Query) -> tuple[int, bytes]:
        res = t.resource
        ctype = content_type.split(";", 1)[0].strip().lower()
        if ctype == APPLY_PATCH:
            return self.server_side_apply(t, body, query)
        if ctype not in PATCH_TYPES:
            raise errors.unsupported_media_type(ctype, (*PATCH_TYPES, APPLY_PATCH))
        with self.store.write_lock:
            old = self.lookup(t)
            current = self.present_obj(res, old.obj) if res.group == "events.k8s.io" else old.raw
            patched = apply_patch(ctype, json.loads(current), body, res.kind)
            obj, _api_version, kind = self.ingest(res, patched, query)
            meta = metadata_of(obj)
            if meta.get("name", t.name) != t.name:
                raise errors.bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"
                )
            entry = self.apply_update(t, old, obj, kind, status_only=t.subresource == "status",
                                      dry_run=query.get("dryRun") == "All")
        return 200, self.present(res, entry)

    def server_side_apply(self, t: Target, body: bytes, query: Query) -> tuple[int, bytes]:
        """``application/apply-patch+yaml``, simplified: create if missing, else strategic-merge the applied config.

        There is no field ownership (managedFields) and so no apply conflicts, and fields dropped
        from the applied configuration are not removed from the live object — enough for tools
        that default to server-side apply to create and update objects.
        """
        import yaml

        try:
            applied = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(applied, dict):
            raise errors.bad_request("an apply patch must be a YAML or JSON object")
        res = t.resource
        if t.subresource:
            raise errors.unsupported_media_type(APPLY_PATCH, PATCH_TYPES)
        check_type(applied, res.api_version, res.kind)
        name = metadata_of(applied).get("name")
        if name != t.name:
            raise errors.bad_request(f"the name of the object ({name or ''}) does not match the name on the URL "
                                     f"({t.name})")
        with self.store.write_lock:
            old = self.store.get(t.rkey, t.namespace, t.name)
            if old is None:
                return self.create(t, store.dumps(applied), query)
            current = self.present_obj(res, old.obj) if res.group == "events.k8s.io" else old.raw
            merged = apply_patch("application/strategic-merge-patch+json", json.loads(current),
                                 store.dumps(applied), res.kind)
            obj, _api_version, kind = self.ingest(res, merged, query)
            entry = self.apply_update(t, old, obj, kind, status_only=False, dry_run=query.get("dryRun") == "All")
        return 200, self.present(res, entry)


def removable(obj: dict[str, Any]) -> bool:
    """Deletion has started, nothing blocks it and no grace period is pending."""
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and (obj.get("spec") or {}).get("finalizers"):
        return False
    return meta.get("deletionGracePeriodSeconds") in (0, None)


def apply_patch(ctype: str, doc: Obj, body: bytes, kind: str) -> Obj:
    """Apply one of the three patch types; the patch module's errors carry their HTTP status."""
    try:
        ops = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.bad_request(f"error decoding patch: {exc}") from None
    try:
        if ctype == "application/json-patch+json":
            if not isinstance(ops, list):
                raise errors.bad_request(
                    "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
                )
            result = patch.json_patch(doc, ops)
        elif ctype == "application/merge-patch+json":
            result = patch.merge_patch(doc, ops)
        else:
            if not isinstance(ops, dict):
                raise errors.bad_request("error decoding patch: a strategic merge patch must be a JSON object")
            result = patch.strategic_merge_patch(doc, ops, kind)
    except patch.PatchError as exc:
        code = int(getattr(exc, "status", 422) or 422)
        reason = {400: "BadRequest", 409: "Conflict", 422: "Invalid", 500: "InternalError"}.get(code, "BadRequest")
        raise errors.ApiError(code, reason, str(exc)) from None
    if not isinstance(result, dict):
        raise errors.bad_request("the patch does not leave an object")
    return result


def _finalizer_errors(old: Obj, new: Obj) -> list[fielderrors.FieldError]:
    """ValidateObjectMetaUpdate: no new finalizers once deletion has started."""
    if not old.get("metadata", {}).get("deletionTimestamp"):
        return []
    before = set(old["metadata"].get("finalizers") or [])
    added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
    if not added:
        return []
    return [fielderrors.FieldError(
        type="FieldValueForbidden", field="metadata.finalizers",
        detail="no new finalizers can be added if the object is being deleted, "
        f"found new finalizers {json.dumps(added)}",
        value=added,
    )]
