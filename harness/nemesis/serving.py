"""When is an ordinal back? When a *new* writer process serves it through the endpoints file.

Pod objects can look Ready while nothing runs (a crashed node's pods stay Ready until the node
monitor notices; a restored node's pods keep their uid), so a heal that waits on pod state
alone can return before the writer is back. Every writer start has a fresh ``epoch`` (its
``/readyz`` says which), so "back" is exact on every cluster: ``/readyz`` answers ready, through
the URL the load and the probe use, with an epoch other than the one seen before the fault.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness import waiting
from harness.load import endpoints
from harness.nemesis import base


def _readyz(url: str, timeout_s: float = 2.0) -> tuple[int, dict[str, object]]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    body = json.loads(raw) if raw else {}
    return resp.status, body if isinstance(body, dict) else {}


def _urls(endpoints_file: Path) -> Mapping[int, str]:
    try:
        return endpoints.read(endpoints_file).urls
    except endpoints.EndpointsError:
        return {}


def epochs(endpoints_file: Path, ordinals: Iterable[int]) -> dict[int, str | None]:
    """Each ordinal's writer epoch now (None when it does not answer)."""
    urls = _urls(endpoints_file)
    seen: dict[int, str | None] = {}
    for ordinal in ordinals:
        url = urls.get(ordinal)
        try:
            _status, body = _readyz(url) if url else (0, {})
        except (OSError, http.client.HTTPException, ValueError):
            body = {}
        epoch = body.get("epoch")
        seen[ordinal] = epoch if isinstance(epoch, str) else None
    return seen


def await_new_writers(nemesis: str, endpoints_file: Path, before: Mapping[int, str | None], *,
                      timeout: float) -> None:
    """Wait until every ordinal in ``before`` is served ready by a writer of another epoch."""
    for ordinal, old in sorted(before.items()):

        def probe(ordinal: int = ordinal, old: str | None = old) -> tuple[bool, str]:
            url = _urls(endpoints_file).get(ordinal)
            if url is None:
                return False, f"ordinal {ordinal} is not in {endpoints_file}"
            try:
                status, body = _readyz(url)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                return False, f"ordinal {ordinal} at {url}: {type(exc).__name__}: {exc}"
            epoch = body.get("epoch")
            if status != 200:
                return False, f"ordinal {ordinal} at {url}: not ready ({body.get('reason')})"
            return epoch != old, f"ordinal {ordinal} at {url}: ready, epoch {epoch} (before the fault: {old})"

        try:
            waiting.until(f"a new writer to serve ordinal {ordinal} ready", probe, timeout=timeout, interval=0.2)
        except waiting.WaitTimeout as exc:
            raise base.NemesisError(f"{nemesis}: {exc}") from None
