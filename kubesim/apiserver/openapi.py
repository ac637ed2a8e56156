"""A minimal OpenAPI v3 discovery so ``kubectl apply -f`` / ``create -f`` work without flags.

kubectl validates manifests before sending them: if the server's OpenAPI v3 document shows the
``fieldValidation`` query parameter on the resource's PATCH operation (matched through
``x-kubernetes-group-version-kind``), kubectl leaves validation to the server and sends
``?fieldValidation=Strict``; otherwise it downloads full schemas to validate client-side
(``k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go``). kubesim has no schemas, so it
serves only that part: ``/openapi/v3`` lists one document per group/version, and each document
holds the object paths with a PATCH operation, its GVK and the parameter.

What this does not give: ``kubectl explain`` (no schemas). Unknown fields are still refused
server-side (:mod:`kubesim.apiserver.fieldcheck`), as kubectl expects once it sends
``fieldValidation=Strict``. The documents carry no
``requestBody`` schema, so ``kubectl apply`` computes its strategic merge patches from the
types compiled into kubectl, as it does for any server without OpenAPI.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from kubesim.apiserver import discovery, resources, store


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


@functools.cache
def group_version_doc(path: str) -> bytes | None:
    """The document for ``api/v1`` or ``apis/<group>/<version>``; None if not served."""
    paths: dict[str, Any] = {}
    for res in resources.RESOURCES:
        if _gv_path(res.group, res.version) != path:
            continue
        scope = "/namespaces/{namespace}" if res.namespaced else ""
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        paths[f"/{path}{scope}/{res.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{res.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": [
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                ],
                "responses": {"200": {"description": "OK"}},
            },
        }
    if not paths:
        return None
    major, minor, patch = discovery.KUBERNETES_VERSION
    return store.dumps({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{major}.{minor}.{patch}"},
                        "paths": paths})


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
