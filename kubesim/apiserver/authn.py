"""Authentication: who a request is, from its bearer token (``k8s.io/apiserver/pkg/authentication``).

Three kinds of bearer token are accepted, tried in this order (kube-apiserver's union authenticator):

* **the admin token** (``DIR/token``, what ``kubesim up`` puts in ``DIR/kubeconfig``, what the
  controllers and kubelets use): user ``kubernetes-admin`` in the group ``system:masters``, which
  the authorizer allows everything without asking RBAC — as kind's admin kubeconfig is
  cluster-admin;
* **static user tokens** (``DIR/tokens.csv``, kube-apiserver's ``--token-auth-file`` format: one
  ``token,user,uid,"group1,group2"`` line per user; written by ``kubesim user add``). Unlike
  kube-apiserver, which reads the file once at start, kubesim re-reads it when it changes, so users
  can be added to a running cluster;
* **service account tokens**: JWTs signed with the cluster's service-account key
  (:mod:`kubesim.apiserver.satokens`), valid while their signature, audience and expiry hold and
  the service account (and the pod or secret they are bound to) still exists.

Every authenticated user also gets the group ``system:authenticated``. A request without a token
is 401 (kubesim runs with ``--anonymous-auth=false``, except for the public health and version
paths); a token none of the three accepts is 401 too.
"""

from __future__ import annotations

import csv
import dataclasses
import hmac
import io
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ADMIN_USER = "kubernetes-admin"
TOKEN_FILE = "tokens.csv"


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """``user.Info``: name, uid, groups and extra (``map[string][]string``)."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def with_authenticated(self) -> UserInfo:
        """The group every authenticated user is in (``group.AuthenticatedGroupAdder``)."""
        if AUTHENTICATED in self.groups or self.name == "system:anonymous":
            return self
        return dataclasses.replace(self, groups=(*self.groups, AUTHENTICATED))

    def as_json(self) -> dict[str, Any]:
        """``authentication.k8s.io/v1 UserInfo`` as SelfSubjectReview and TokenReview show it."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo(ADMIN_USER, groups=(MASTERS, AUTHENTICATED))


@dataclasses.dataclass(frozen=True)
class StaticUser:
    token: str
    user: UserInfo


def parse_token_file(text: str) -> list[StaticUser]:
    """``--token-auth-file``: ``token,user,uid[,"group1,group2,..."]`` per line; blank and ``#`` lines skipped.

    Raises ValueError naming the line for a record with fewer than three fields, as
    ``tokenfile.NewCSV`` refuses such a file.
    """
    out: list[StaticUser] = []
    for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not record or not "".join(record).strip() or record[0].lstrip().startswith("#"):
            continue
        if len(record) < 3:
            raise ValueError(f"token file line {number}: want token,user,uid[,groups], got {len(record)} fields")
        token, name, uid = (field.strip() for field in record[:3])
        groups = tuple(g.strip() for g in record[3].split(",") if g.strip()) if len(record) > 3 else ()
        if token and name:
            out.append(StaticUser(token, UserInfo(name, uid, groups)))
    return out


def format_token_file(users: list[StaticUser]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for entry in users:
        row = [entry.token, entry.user.name, entry.user.uid]
        if entry.user.groups:
            row.append(",".join(entry.user.groups))
        writer.writerow(row)
    return buf.getvalue()


class StaticTokens:
    """``DIR/tokens.csv``, re-read whenever its mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._users: list[StaticUser] = []

    def _current(self) -> list[StaticUser]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._seen:
                try:
                    self._users = parse_token_file(self.path.read_text())
                except (OSError, ValueError):
                    self._users = []  # a file being rewritten: its next version is read on the next request
                self._seen = stamp
            return self._users

    def lookup(self, token: str) -> UserInfo | None:
        found = None
        for entry in self._current():
            if hmac.compare_digest(entry.token.encode(), token.encode()):
                found = entry.user
        return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None if there is none)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
