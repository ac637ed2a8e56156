"""OpenAPI discovery: ``/openapi/v3`` (one document per group/version) and ``/openapi/v2``.

Each ``/openapi/v3/<group-version>`` document holds the operations of the served resources
(:mod:`kubesim.apiserver.openapi_paths`) and the schemas of their kinds, taken from the
Kubernetes release kubesim emulates (:mod:`kubesim.apiserver.openapi_schemas`). What clients do
with them, as against a real apiserver:

* ``kubectl apply -f`` / ``create -f`` find the ``fieldValidation`` parameter on the kind's PATCH
  operation (matched through ``x-kubernetes-group-version-kind``) and leave validation to the
  server, sending ``?fieldValidation=Strict`` (``k8s.io/cli-runtime/pkg/resource/
  query_param_verifier_v3.go``); unknown fields are then refused server-side
  (:mod:`kubesim.apiserver.fieldcheck`).
* ``kubectl apply`` computes strategic merge patches from the schemas' patch strategies and merge
  keys, since the PATCH operations accept ``application/strategic-merge-patch+json``.
* ``kubectl explain`` prints the schemas.

``/openapi/v2`` (:mod:`kubesim.apiserver.openapi_v2`) is the fallback kubectl consults when a
group/version's v3 document lacks the kind: for a kind kubesim does not serve (``Deployment``)
``kubectl apply`` then reports upstream's ``no matches for kind "Deployment" in version
"apps/v1"``.
"""

from __future__ import annotations

import functools
import hashlib

from kubesim.apiserver import openapi_paths, resources, store


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


@functools.cache
def group_version_doc(path: str) -> bytes | None:
    """The document for ``api/v1`` or ``apis/<group>/<version>``; None if not served (built once, then cached)."""
    for group, version in resources.group_versions():
        if _gv_path(group, version) == path:
            return store.dumps(openapi_paths.document(group, version))
    return None


@functools.cache
def root() -> bytes:
    """``/openapi/v3``: where each group/version's document lives (the hash lets clients cache it)."""
    entries = {}
    for group, version in resources.group_versions():
        path = _gv_path(group, version)
        doc = group_version_doc(path) or b""
        digest = hashlib.sha256(doc).hexdigest()[:32].upper()
        entries[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return store.dumps({"paths": entries})
