"""The ServiceAccount admission plugin (``plugin/pkg/admission/serviceaccount/admission.go``), pods on create.

* ``spec.serviceAccountName`` defaults to ``default`` (set by :mod:`kubesim.apiserver.admission`);
* the service account must exist, else 403 ``pods "x" is forbidden: error looking up service account
  <ns>/<name>: serviceaccount "<name>" not found``. For ``default``, which the serviceaccount
  controller creates moments after its namespace, upstream retries the lookup for about a second
  and a half; kubesim waits up to :data:`DEFAULT_WAIT` seconds for it to be written (woken by the
  store's writes, not by polling), so a pod created right after its namespace is admitted as on a
  real cluster. A pod in a missing or terminating namespace is left to the namespace checks (404 /
  403 NamespaceTerminating), as NamespaceLifecycle runs before this plugin upstream;
* unless ``automountServiceAccountToken`` is false (the pod's setting wins over the service
  account's), a projected volume ``kube-api-access-<5 random characters>`` — the token
  (``expirationSeconds: 3607``), ``ca.crt`` from the ``kube-root-ca.crt`` ConfigMap and the
  namespace from the downward API, ``defaultMode: 420`` — is added and mounted read-only at
  ``/var/run/secrets/kubernetes.io/serviceaccount`` in every init and regular container that has
  nothing mounted there yet; a volume already named ``kube-api-access-*`` is reused;
* the service account's ``imagePullSecrets`` are copied to a pod that names none;
* a mirror pod (annotation ``kubernetes.io/config.mirror``) may not name a service account.
"""

from __future__ import annotations

import random
import time
from typing import Any

from kubesim.apiserver import errors, resources, store

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_EXPIRATION = 3607
DEFAULT_WAIT = 2.0
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Obj = dict[str, Any]


def token_volume_source() -> Obj:
    """``TokenVolumeSource()``: token, the cluster CA and the namespace, as one projected volume."""
    return {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def _forbidden(name: str, why: str) -> errors.ApiError:
    if name:
        return errors.forbidden("", "pods", name, why)
    return errors.ApiError(403, "Forbidden", f"pods is forbidden: {why}", {"kind": "pods"})


class ServiceAccountAdmission:
    """Registered on ``rest.Api.admission_plugins`` by the API server."""

    def __init__(self, db: store.Store, wait: float = DEFAULT_WAIT, rng: random.Random | None = None) -> None:
        self.db = db
        self.wait = wait
        self.rng = rng or random.SystemRandom()

    def _namespace_open(self, namespace: str) -> bool:
        entry = self.db.get("core/namespaces", "", namespace)
        if entry is None:
            return False
        meta = entry.obj.get("metadata") or {}
        return not meta.get("deletionTimestamp") and (entry.obj.get("status") or {}).get("phase") != "Terminating"

    def lookup(self, namespace: str, name: str) -> Obj | None:
        """The service account; for ``default``, wait (on store writes) up to ``wait`` seconds for it."""
        deadline = time.monotonic() + self.wait
        rv = self.db.resource_version
        while True:
            entry = self.db.get("core/serviceaccounts", namespace, name)
            if entry is not None:
                return entry.obj
            left = deadline - time.monotonic()
            if name != DEFAULT_SERVICE_ACCOUNT or left <= 0 or self.db.closed:
                return None
            try:
                seen = self.db.events_after(rv, left)
            except store.Compacted:
                rv = self.db.resource_version
                continue
            if seen:
                rv = seen[-1].rv

    def admit_create(self, res: resources.Resource, kind: str, obj: Obj) -> Obj:
        if kind != "Pod" or res.group != "" or res.plural != "pods":
            return obj
        meta = obj.get("metadata") or {}
        spec = obj.setdefault("spec", {})
        name = str(meta.get("name") or "")
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            if spec.get("serviceAccountName"):
                raise _forbidden(name, "a mirror pod may not reference service accounts")
            return obj
        namespace = str(meta.get("namespace") or "")
        if not self._namespace_open(namespace):
            return obj  # the REST layer answers 404 / NamespaceTerminating, as NamespaceLifecycle would first
        sa_name = str(spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)
        spec["serviceAccountName"] = sa_name
        sa = self.lookup(namespace, sa_name)
        if sa is None:
            raise _forbidden(name, f"error looking up service account {namespace}/{sa_name}: "
                                   f'serviceaccount "{sa_name}" not found')
        if self._automount(sa, spec):
            self._mount_token(spec)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": str((s or {}).get("name") or "")} for s in sa["imagePullSecrets"]]
        return obj

    def admit_update(self, res: resources.Resource, kind: str, old: Obj, new: Obj) -> None:
        return None

    @staticmethod
    def _automount(sa: Obj, spec: Obj) -> bool:
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        if sa.get("automountServiceAccountToken") is not None:
            return bool(sa["automountServiceAccountToken"])
        return True

    def _mount_token(self, spec: Obj) -> None:
        volumes = spec.get("volumes") or []
        existing = next((str(v.get("name")) for v in volumes if isinstance(v, dict)
                         and str(v.get("name") or "").startswith(VOLUME_PREFIX)), None)
        volume_name = existing or VOLUME_PREFIX + "".join(self.rng.choice(_ALPHABET) for _ in range(5))
        needed = False
        for key in ("initContainers", "containers"):
            for container in spec.get(key) or []:
                if not isinstance(container, dict):
                    continue
                mounts = container.get("volumeMounts") or []
                if any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in mounts):
                    continue
                container["volumeMounts"] = [*mounts, {"name": volume_name, "readOnly": True,
                                                       "mountPath": MOUNT_PATH}]
                needed = True
        if existing is None and needed:
            spec["volumes"] = [*volumes, {"name": volume_name, "projected": token_volume_source()}]
