"""The ``serviceaccount`` and ``root-ca-cert-publisher`` controllers, run inside the API server process.

Upstream both run in kube-controller-manager (``pkg/controller/serviceaccount/serviceaccounts_controller.go``
and ``pkg/controller/certificates/rootcacertpublisher``): every namespace that is not terminating
gets a ServiceAccount ``default`` and a ConfigMap ``kube-root-ca.crt`` whose ``ca.crt`` is the
cluster CA (the one that signed the API server's certificate), recreated when deleted and put back
when edited. kubesim runs them beside the store, as it does namespace deletion
(:mod:`kubesim.apiserver.nslifecycle`), for two reasons: a pod cannot be admitted without its
service account (:mod:`kubesim.apiserver.saadmission`), and an API server started with
``--controllers none`` (many of kubesim's own tests) must still admit pods. The root-CA publisher,
which nothing in the API server needs, follows upstream instead: it does not run without the
controller manager (``--no-root-ca-publisher``, which :mod:`kubesim.controlplane` passes with
``--controllers none``), so such a server's namespaces hold only what clients put there. Writes go through
:meth:`rest.Api.create_obj`/``put`` as the server's own (no user on the context: no RBAC).

The loop reacts to store events for namespaces, service accounts named ``default`` and
ConfigMaps named ``kube-root-ca.crt``; everything else passes by without a store read.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from kubesim.apiserver import errors, resources, rest, store

log = logging.getLogger("kubesim.apiserver.serviceaccounts")

DEFAULT_SERVICE_ACCOUNT = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")
_NAMESPACES = "core/namespaces"
_SERVICE_ACCOUNTS = "core/serviceaccounts"
_CONFIGMAPS = "core/configmaps"

Obj = dict[str, Any]


def _open(entry: store.Entry | None) -> bool:
    if entry is None:
        return False
    return not entry.obj["metadata"].get("deletionTimestamp") and \
        (entry.obj.get("status") or {}).get("phase") != "Terminating"


class Publisher:
    """Ensures one namespace's ``default`` ServiceAccount and ``kube-root-ca.crt`` ConfigMap."""

    def __init__(self, api: rest.Api, ca_pem: str | None) -> None:
        """``ca_pem`` None: no root-CA publisher (an API server started without the controller manager)."""
        self.api = api
        self.ca_pem = ca_pem
        sa_res = resources.by_gvr("", "v1", "serviceaccounts")
        cm_res = resources.by_gvr("", "v1", "configmaps")
        assert sa_res is not None
        assert cm_res is not None
        self.sa_res, self.cm_res = sa_res, cm_res

    def configmap(self, namespace: str, ca_pem: str) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": {"ca.crt": ca_pem}}

    def sync(self, namespace: str) -> None:
        """``syncNamespace`` of both controllers; a namespace going away is left alone."""
        db = self.api.store
        if not _open(db.get(_NAMESPACES, "", namespace)):
            return
        try:
            if db.get(_SERVICE_ACCOUNTS, namespace, DEFAULT_SERVICE_ACCOUNT) is None:
                sa = {"apiVersion": "v1", "kind": "ServiceAccount",
                      "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}}
                self.api.create_obj(rest.Target(self.sa_res, namespace), sa, "ServiceAccount", {})
            if self.ca_pem is None:
                return
            entry = db.get(_CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP)
            if entry is None:
                self.api.create_obj(rest.Target(self.cm_res, namespace), self.configmap(namespace, self.ca_pem),
                                    "ConfigMap", {})
            elif (entry.obj.get("data") or {}) != {"ca.crt": self.ca_pem} or \
                    (entry.obj["metadata"].get("annotations") or {}).get(DESCRIPTION_ANNOTATION) != DESCRIPTION:
                self._repair(namespace, entry, self.ca_pem)
        except errors.ApiError as exc:
            if exc.code not in (403, 404, 409):  # terminating meanwhile, or someone else was first
                raise
            log.debug("namespace %s: %s", namespace, exc.message)

    def _repair(self, namespace: str, entry: store.Entry, ca_pem: str) -> None:
        """Put the CA back (upstream updates the ConfigMap: data replaced, the description annotation set)."""
        with self.api.store.write_lock:
            current = self.api.store.get(_CONFIGMAPS, namespace, ROOT_CA_CONFIGMAP)
            if current is None or current.rv != entry.rv:
                return  # changed meanwhile: the next event brings it back here
            obj: Obj = json.loads(current.raw)
            obj["data"] = {"ca.crt": ca_pem}
            obj.pop("binaryData", None)
            obj["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
            self.api.store.put(_CONFIGMAPS, obj, current)


def _relevant(event: store.Event) -> str | None:
    """The namespace an event asks to sync (None: an event these controllers ignore)."""
    if event.rkey == _NAMESPACES:
        return event.name
    if event.rkey == _SERVICE_ACCOUNTS and event.name == DEFAULT_SERVICE_ACCOUNT and event.type == "DELETED":
        return event.namespace
    if event.rkey == _CONFIGMAPS and event.name == ROOT_CA_CONFIGMAP:
        return event.namespace
    return None


def run(publisher: Publisher, stop: threading.Event, interval: float = 1.0) -> None:
    """Sync every namespace once, then each namespace an event concerns."""
    db = publisher.api.store
    pos = db.resource_version
    pending: set[str] = {key[1] for key, _entry in db.scan(_NAMESPACES, None)[0]}
    while not stop.is_set() and not db.closed:
        for namespace in sorted(pending):
            try:
                publisher.sync(namespace)
            except Exception:
                log.exception("namespace %s: publishing the default service account and root CA failed", namespace)
        pending = set()
        try:
            events = db.events_after(pos, interval)
        except store.Compacted:
            pos = db.resource_version
            pending = {key[1] for key, _entry in db.scan(_NAMESPACES, None)[0]}
            continue
        if events:
            pos = events[-1].rv
        pending = {ns for ns in map(_relevant, events) if ns}


def start(api: rest.Api, ca_file: Path, stop: threading.Event, *, root_ca: bool = True) -> threading.Thread:
    thread = threading.Thread(target=run, args=(Publisher(api, ca_file.read_text() if root_ca else None), stop),
                              name="serviceaccounts", daemon=True)
    thread.start()
    return thread
