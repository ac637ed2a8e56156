"""Identity and access, wired into one API server: authenticators, authorizer, admission plugins, defaults.

:func:`install` is what ``python -m kubesim.apiserver`` calls at start: it loads (or makes) the
service-account signing key in the state directory, registers the ServiceAccount and RBAC
escalation admission plugins on the REST layer, creates the default ClusterRoles and bindings, and
returns the :class:`~kubesim.apiserver.server.ApiServer` that authenticates the admin token, the
named users of ``DIR/tokens.csv`` and service-account JWTs, and authorizes with RBAC. See
:mod:`kubesim.apiserver.authn`, :mod:`kubesim.apiserver.authz`, :mod:`kubesim.apiserver.satokens`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from kubesim.apiserver import rbacadmission, rbacdefaults, rest, saadmission, sacontrollers, satokens, server, watch

CA_FILE = "ca.crt"
"""The cluster CA in the state directory (:mod:`kubesim.certs`): what ``kube-root-ca.crt`` publishes."""


def install(api: rest.Api, state_dir: Path, admin_token: str, watch_settings: watch.Settings) -> server.ApiServer:
    keys = satokens.Keys(satokens.ensure_key(state_dir))
    app = server.ApiServer(api, admin_token, watch_settings, state_dir=state_dir, keys=keys)
    api.admission_plugins.append(saadmission.ServiceAccountAdmission(api.store))
    api.admission_plugins.append(rbacadmission.EscalationCheck(app.authorizer))
    rbacdefaults.ensure(api)
    return app


def start_controllers(api: rest.Api, state_dir: Path, stop: threading.Event, *,
                      root_ca: bool = True) -> threading.Thread:
    """The ``default`` ServiceAccount (always: pods are not admitted without it) and, with ``root_ca``, the
    ``kube-root-ca.crt`` ConfigMap of every namespace (:mod:`.sacontrollers`)."""
    return sacontrollers.start(api, state_dir / CA_FILE, stop, root_ca=root_ca)
