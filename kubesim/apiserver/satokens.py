"""Service account tokens: the signing key, the JWTs, the TokenRequest API and their authentication.

Follows ``pkg/serviceaccount/{claims,jwt}.go`` and ``pkg/registry/core/serviceaccount/storage/token.go``:

* **The key**: RSA 2048 in ``DIR/sa.key`` (0600), made on the API server's first start and reused
  after (kube-apiserver's ``--service-account-signing-key-file``). Tokens are RS256 JWTs whose
  header names the key (``kid`` = base64url of the SHA-256 of the public key's DER, as upstream).
* **Claims**: ``iss`` = ``https://kubernetes.default.svc.cluster.local`` (kind's issuer), ``aud`` =
  the requested audiences (default: the API server's, i.e. the issuer), ``sub`` =
  ``system:serviceaccount:<ns>:<name>``, ``iat``/``nbf``/``exp``, ``jti``, and the private claim
  ``kubernetes.io`` with ``namespace``, ``serviceaccount`` {name, uid} and the bound ``pod``,
  ``secret`` or ``node`` {name, uid} (a pod-bound token also names the pod's node), plus
  ``warnafter`` for an extended token.
* **TokenRequest** (``POST .../serviceaccounts/<name>/token``, what ``kubectl create token`` and
  the kubelet send): ``expirationSeconds`` defaults to 3600 and may not be under 600; a pod-bound
  request for exactly 3607 s with the API audiences gets a one-year token that warns after 3607 s
  (``--service-account-extend-token-expiration``, on by default), while the answer's
  ``expirationTimestamp`` says 3607 s, so the kubelet still rotates it hourly.
* **Authentication**: signature, issuer, an audience the API server accepts, ``exp``/``nbf`` (one
  minute of leeway, as go-jose's default), and that the service account — with the uid in the
  token — still exists, as does the bound pod/secret/node; a pod or service account whose deletion
  started more than 60 s ago no longer authenticates. The user is
  ``system:serviceaccount:<ns>:<name>`` in the groups ``system:serviceaccounts`` and
  ``system:serviceaccounts:<ns>``, with the pod/node and credential id in ``extra``.

Not served: legacy Secret-based tokens (the tokens controller), the OIDC discovery documents.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubesim.apiserver import authn, errors, fielderrors, store

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES: tuple[str, ...] = (ISSUER,)
KEY_FILE = "sa.key"

DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
WARN_ONLY_BOUND_TOKEN_EXPIRATION = 3607
"""``serviceaccount.WarnOnlyBoundTokenExpirationSeconds``: what the ServiceAccount admission asks for."""
EXPIRATION_EXTENSION = 365 * 24 * 3600
"""``token.ExpirationExtensionSeconds``: the lifetime such a request really gets."""
LEEWAY = 60
DELETION_GRACE = 60
"""A bound object whose deletion started longer ago than this no longer vouches for the token."""

SA_PREFIX = "system:serviceaccount:"
SA_GROUP = "system:serviceaccounts"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"

Obj = dict[str, Any]
Clock = Callable[[], float]


def username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def split_username(user: str) -> tuple[str, str] | None:
    """``system:serviceaccount:ns:name`` → (ns, name); None for any other user name."""
    if not user.startswith(SA_PREFIX):
        return None
    namespace, sep, name = user[len(SA_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


def groups_of(namespace: str) -> tuple[str, str]:
    return SA_GROUP, f"{SA_GROUP}:{namespace}"


# ----- the key ------------------------------------------------------------------------------------


def ensure_key(state_dir: Path) -> rsa.RSAPrivateKey:
    """The cluster's signing key, created (0600) on first use; concurrent first uses agree on one key."""
    path = state_dir / KEY_FILE
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process made the key first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return loaded


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(public: rsa.RSAPublicKey) -> str:
    """``keyIDFromPublicKey``: base64url(SHA-256(PKIX DER))."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _b64(hashlib.sha256(der).digest())


class Keys:
    """Signs and verifies the cluster's JWTs."""

    def __init__(self, private: rsa.RSAPrivateKey) -> None:
        self.private = private
        self.public = private.public_key()
        self.kid = key_id(self.public)

    def sign(self, claims: Obj) -> str:
        header = _b64(json.dumps({"alg": "RS256", "kid": self.kid}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{_b64(signature)}"

    def verify(self, token: str) -> Obj | None:
        """The claims of a token this key signed (None: not a JWT, another algorithm or key, bad signature)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            self.public.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                               hashes.SHA256())
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, UnicodeDecodeError):
            return None
        return claims if isinstance(claims, dict) else None


def decode_unverified(token: str) -> Obj:
    """A JWT's claims without checking anything (tests and tools reading what a token says)."""
    claims = json.loads(_unb64(token.split(".")[1]))
    if not isinstance(claims, dict):
        raise ValueError("the token's payload is not a JSON object")
    return claims


# ----- claims ---------------------------------------------------------------------------------------


def _ref(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    return {"name": str(meta.get("name") or ""), "uid": str(meta.get("uid") or "")}


def claims(sa: Obj, *, audiences: list[str], now: int, expiration: int, pod: Obj | None = None,
           secret: Obj | None = None, node: Obj | None = None, warn_after: int = 0) -> Obj:
    """``serviceaccount.Claims``: the public and the ``kubernetes.io`` private claims of one token."""
    meta = sa.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    private: Obj = {"namespace": namespace, "serviceaccount": _ref(sa)}
    if pod is not None:
        private["pod"] = _ref(pod)
        if node is not None:
            private["node"] = _ref(node)
    elif secret is not None:
        private["secret"] = _ref(secret)
    elif node is not None:
        private["node"] = _ref(node)
    if warn_after:
        private["warnafter"] = warn_after
    return {
        "aud": list(audiences), "exp": now + expiration, "iat": now, "iss": ISSUER, "jti": str(uuid.uuid4()),
        "kubernetes.io": private, "nbf": now, "sub": username(namespace, str(meta.get("name") or "")),
    }


# ----- TokenRequest ---------------------------------------------------------------------------------


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(db: store.Store, rkey: str, namespace: str, name: str) -> Obj | None:
    entry = db.get(rkey, namespace, name)
    return entry.obj if entry is not None else None


def _invalid(name: str, field: str, value: object, detail: str) -> errors.ApiError:
    return errors.invalid("authentication.k8s.io", "TokenRequest", name, [
        fielderrors.FieldError(type="FieldValueInvalid", field=field, detail=detail, value=value)])


def request_token(db: store.Store, keys: Keys, namespace: str, name: str, request: Obj, *,
                  clock: Clock = time.time) -> Obj:
    """``TokenREST.Create``: the TokenRequest answered (with ``status.token``), or an ApiError."""
    if request.get("apiVersion", "authentication.k8s.io/v1") != "authentication.k8s.io/v1" or \
            request.get("kind", "TokenRequest") != "TokenRequest":
        raise errors.bad_request(f"{request.get('kind')} in version \"{request.get('apiVersion')}\" cannot be "
                                 "handled as a TokenRequest")
    sa = _get(db, "core/serviceaccounts", namespace, name)
    if sa is None:
        raise errors.not_found("", "serviceaccounts", name)
    spec = dict(request.get("spec") or {})
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = DEFAULT_EXPIRATION
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise errors.bad_request("spec.expirationSeconds must be an integer")
    if expiration < MIN_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")
    if expiration > MAX_EXPIRATION:
        raise _invalid(name, "spec.expirationSeconds", expiration,
                       "may not specify a duration larger than 2^32 seconds")
    audiences = [str(a) for a in spec.get("audiences") or []] or list(API_AUDIENCES)
    pod = secret = node = None
    ref = spec.get("boundObjectRef")
    if isinstance(ref, dict) and ref:
        kind, ref_name, ref_uid = str(ref.get("kind") or ""), str(ref.get("name") or ""), str(ref.get("uid") or "")
        group = str(ref.get("apiVersion") or "v1").rpartition("/")[0]
        if group == "" and kind == "Pod":
            pod = _get(db, "core/pods", namespace, ref_name)
            if pod is None:
                raise errors.not_found("", "pods", ref_name)
            if str((pod.get("spec") or {}).get("serviceAccountName") or "") != name:
                raise errors.bad_request(f"cannot bind token for serviceaccount {name!r} to pod running with "
                                         "different serviceaccount name.")
            bound = pod
            node_name = str((pod.get("spec") or {}).get("nodeName") or "")
            node = _get(db, "core/nodes", "", node_name) if node_name else None
        elif group == "" and kind == "Secret":
            secret = _get(db, "core/secrets", namespace, ref_name)
            if secret is None:
                raise errors.not_found("", "secrets", ref_name)
            bound = secret
        elif group == "" and kind == "Node":
            node = _get(db, "core/nodes", "", ref_name)
            if node is None:
                raise errors.not_found("", "nodes", ref_name)
            bound = node
        else:
            raise errors.bad_request(f"cannot bind token for serviceaccount {name!r} to object of type "
                                     f"{ref.get('apiVersion') or 'v1'}, Kind={kind}")
        actual = str((bound.get("metadata") or {}).get("uid") or "")
        if ref_uid and ref_uid != actual:
            raise errors.conflict("", "serviceaccounts", name,
                                  f"the UID in the bound object reference ({ref_uid}) does not match the UID in "
                                  "record. The object might have been deleted and then recreated")
    now = int(clock())
    lifetime, warn_after = int(expiration), 0
    if pod is not None and expiration == WARN_ONLY_BOUND_TOKEN_EXPIRATION and set(audiences) <= set(API_AUDIENCES):
        lifetime, warn_after = EXPIRATION_EXTENSION, now + expiration
    token = keys.sign(claims(sa, audiences=audiences, now=now, expiration=lifetime, pod=pod, secret=secret,
                             node=node, warn_after=warn_after))
    spec["audiences"] = audiences
    spec["expirationSeconds"] = expiration
    spec.setdefault("boundObjectRef", None)
    return {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": _rfc3339(now + expiration)},
    }


# ----- authentication -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A token this cluster issued that no longer authenticates, and why (for the API server's log)."""

    reason: str


def _deleted_too_long_ago(obj: Obj, now: float) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    try:
        when = datetime.datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return True
    return when.timestamp() < now - DELETION_GRACE


def authenticate(db: store.Store, keys: Keys, token: str, clock: Clock = time.time) -> authn.UserInfo | Rejected | None:
    """The service account a token names (None: not one of this cluster's tokens; Rejected: no longer valid)."""
    found = keys.verify(token)
    if found is None or found.get("iss") != ISSUER:
        return None
    now = clock()
    aud = found.get("aud")
    audiences = [aud] if isinstance(aud, str) else list(aud or [])
    if not set(audiences) & set(API_AUDIENCES):
        return Rejected(f"token audiences {audiences} is invalid for the target audiences {list(API_AUDIENCES)}")
    try:
        if now > float(found["exp"]) + LEEWAY:
            return Rejected("token has expired")
        if "nbf" in found and now < float(found["nbf"]) - LEEWAY:
            return Rejected("token not yet valid")
    except (KeyError, TypeError, ValueError):
        return Rejected("token without a valid expiry")
    private = found.get("kubernetes.io")
    if not isinstance(private, dict):
        return Rejected("not a bound service account token (legacy tokens are not served)")
    namespace = str(private.get("namespace") or "")
    sa_ref = private.get("serviceaccount") or {}
    sa = _get(db, "core/serviceaccounts", namespace, str(sa_ref.get("name") or ""))
    if sa is None:
        return Rejected(f'serviceaccounts "{sa_ref.get("name")}" not found')
    sa_uid = str((sa.get("metadata") or {}).get("uid") or "")
    if sa_uid != sa_ref.get("uid"):
        return Rejected(f"service account UID ({sa_uid}) does not match claim ({sa_ref.get('uid')})")
    if _deleted_too_long_ago(sa, now):
        return Rejected("service account is being deleted")
    extra: dict[str, tuple[str, ...]] = {}
    for kind, rkey, scope in (("pod", "core/pods", namespace), ("secret", "core/secrets", namespace),
                              ("node", "core/nodes", "")):
        ref = private.get(kind)
        if not isinstance(ref, dict):
            continue
        obj = _get(db, rkey, scope, str(ref.get("name") or ""))
        if obj is None:
            return Rejected(f'{kind} "{ref.get("name")}" the token is bound to no longer exists')
        if str((obj.get("metadata") or {}).get("uid") or "") != ref.get("uid"):
            return Rejected(f"{kind} UID does not match the token's claim")
        if kind != "node" and _deleted_too_long_ago(obj, now):
            return Rejected(f'{kind} "{ref.get("name")}" has been deleted')
        if kind == "pod":
            extra[EXTRA_POD_NAME] = (str(ref.get("name")),)
            extra[EXTRA_POD_UID] = (str(ref.get("uid")),)
        elif kind == "node":
            extra[EXTRA_NODE_NAME] = (str(ref.get("name")),)
            extra[EXTRA_NODE_UID] = (str(ref.get("uid")),)
    if found.get("jti"):
        extra[EXTRA_CREDENTIAL_ID] = (f"JTI={found['jti']}",)
    name = str(sa_ref.get("name") or "")
    return authn.UserInfo(username(namespace, name), sa_uid, groups_of(namespace), extra)
