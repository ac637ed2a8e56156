"""Admission plugins that need cluster state or the requesting user (the REST layer runs them).

The pure admission steps live in :mod:`kubesim.apiserver.admission`; these are the plugins that
read the store or ask the authorizer: ServiceAccount (:mod:`kubesim.apiserver.saadmission`) and
RBAC escalation prevention (:mod:`kubesim.apiserver.rbacadmission`). ``rest.Api`` calls every
registered plugin's :meth:`Plugin.admit_create` after the mutating defaults, before validation and
outside the store's write lock (a plugin may wait), and :meth:`Plugin.admit_update` once an update
is validated. A plugin refuses by raising :class:`kubesim.apiserver.errors.ApiError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kubesim.apiserver import resources

Obj = dict[str, Any]


class Plugin(Protocol):
    def admit_create(self, res: resources.Resource, kind: str, obj: Obj) -> Obj:
        """The object to create (possibly changed); raise ApiError to refuse."""

    def admit_update(self, res: resources.Resource, kind: str, old: Obj, new: Obj) -> None:
        """Raise ApiError to refuse replacing ``old`` by ``new``."""
