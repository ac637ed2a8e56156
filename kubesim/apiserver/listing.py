"""LIST (selectors, limit/continue paging) and deletecollection.

Paging follows ``staging/src/k8s.io/apiserver/pkg/storage/continue.go``: the token is opaque
base64 of ``{"v":"meta.k8s.io/v1","rv":<list rv>,"start":<next key>}``; every page reports the
resourceVersion of the first one and is read from the state at that version (a consistent
snapshot, rebuilt from the watch log), and a token older than the compacted window answers 410
Expired (as etcd does once the revision is compacted). ``resourceVersionMatch=Exact`` lists
are served the same way; other lists return the latest state (never older than asked).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

from kubesim.apiserver import deletion, errors, rest, selectors, store, tables

_CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list."
)


@dataclasses.dataclass(frozen=True)
class Matcher:
    """Which objects a list or watch selects (namespace, label and field selectors)."""

    kind: str
    namespace: str
    labels: selectors.LabelSelector
    fields: selectors.FieldSelector

    def __call__(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if not self.labels.empty and not self.labels.matches(meta.get("labels") or {}):
            return False
        return self.fields.empty or self.fields.matches(selectors.object_fields(self.kind, obj))

    @property
    def selects_all(self) -> bool:
        return self.labels.empty and self.fields.empty


def matcher(t: rest.Target, query: rest.Query) -> Matcher:
    kind = t.resource.kind
    try:
        labels = selectors.parse_label_selector(query.get("labelSelector", ""))
        fields = selectors.parse_field_selector(query.get("fieldSelector", ""), selectors.supported_fields(kind))
    except selectors.SelectorError as exc:
        raise errors.bad_request(str(exc)) from None
    return Matcher(kind, t.namespace, labels, fields)


def _encode_continue(rv: int, key: store.Key) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_continue(text: str) -> tuple[int, store.Key]:
    try:
        token = json.loads(base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4)))
        rv = int(token["rv"])
        start = str(token["start"]).rstrip("\x00")
        ns, _, name = start.partition("/")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request(f"continue key is not valid: {text!r}") from None
    return rv, (ns, name)


def select(api: rest.Api, t: rest.Target, query: rest.Query) -> tuple[list[store.Entry], int, str, int | None]:
    """The entries of one page: (entries, list rv, continue token, remaining count or None)."""
    match = matcher(t, query)
    limit_text = query.get("limit") or "0"
    try:
        limit = int(limit_text)
    except ValueError:
        raise errors.bad_request(f"limit: Invalid value: {limit_text!r}: must be an integer") from None
    token = query.get("continue")
    if token:
        rv, after = _decode_continue(token)
        try:
            items = [item for item in api.store.snapshot(t.rkey, t.namespace or None, rv) if item[0] > after]
        except store.Compacted:
            raise errors.expired(_CONTINUE_EXPIRED) from None
    elif query.get("resourceVersionMatch") == "Exact" and query.get("resourceVersion"):
        try:
            rv = int(query["resourceVersion"])
        except ValueError:
            raise errors.bad_request(f"invalid resourceVersion {query['resourceVersion']!r}") from None
        try:
            items = api.store.snapshot(t.rkey, t.namespace or None, rv)
        except store.Compacted as exc:
            raise errors.too_old_resource_version(exc.requested, exc.oldest) from None
    else:
        items, rv = api.store.scan(t.rkey, t.namespace or None)
    chosen: list[store.Entry] = []
    next_token = ""
    remaining: int | None = None
    for index, (_key, entry) in enumerate(items):
        if not match(entry.obj):
            continue
        if limit > 0 and len(chosen) == limit:
            last_key = items[index - 1][0]
            next_token = _encode_continue(rv, last_key)
            if match.selects_all:
                remaining = len(items) - index
            break
        chosen.append(entry)
    return chosen, rv, next_token, remaining


def list_body(api: rest.Api, t: rest.Target, query: rest.Query, as_table: bool = False) -> bytes:
    chosen, rv, token, remaining = select(api, t, query)
    res = t.resource
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if token:
        meta["continue"] = token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    if as_table:
        pairs = [(e.obj, json.loads(api.present(res, e)) if res.group == "events.k8s.io" else e.obj) for e in chosen]
        return tables.table(res.kind, pairs, meta, query.get("includeObject", "Metadata"))
    head = store.dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + b",".join(api.present(res, e) for e in chosen) + b"]}"


def delete_collection(api: rest.Api, t: rest.Target, body: bytes, query: rest.Query) -> tuple[int, bytes]:
    if "deletecollection" not in t.resource.verbs:
        raise errors.method_not_allowed()
    options = deletion.parse_options(body, query)
    match = matcher(t, query)
    out: list[bytes] = []
    with api.store.write_lock:
        items, _rv = api.store.scan(t.rkey, t.namespace or None)
        for (ns, name), entry in items:
            if not match(entry.obj):
                continue
            target = dataclasses.replace(t, namespace=ns, name=name)
            outcome = deletion.delete_entry(api, target, entry, options)
            out.append(api.present(t.resource, outcome.entry))
        rv = api.store.resource_version
    res = t.resource
    head = store.dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": {"resourceVersion": str(rv)}})
    return 200, head[:-1] + b',"items":[' + b",".join(out) + b"]}"
