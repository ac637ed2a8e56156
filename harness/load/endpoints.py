"""The endpoints file: which URL serves each ordinal, right now.

The harness owns the cluster view (pods move, restart, get new IPs or port-forwards); the
locust process owns the load and must never import the Kubernetes client. They meet in one
small JSON file that the harness rewrites atomically (temporary file + ``os.replace`` in the
same directory) whenever an address changes, and that locust users re-read when a
connection fails. A reader therefore sees either the old or the new mapping, never half.

Format (``version`` lets a reader tell rewrites apart in logs)::

    {"version": 3, "endpoints": {"0": "http://127.0.0.1:40001", "1": "http://10.0.0.7:8080"}}

No cluster I/O and no locust here: this module is imported on both sides.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import urllib.parse
from collections.abc import Mapping
from pathlib import Path


class EndpointsError(Exception):
    """The endpoints file or an endpoint given on the command line is unusable."""


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoints:
    """An ordinal → base URL map (no trailing slash), plus the rewrite counter."""

    urls: Mapping[int, str]
    version: int = 0

    @property
    def ordinals(self) -> tuple[int, ...]:
        return tuple(sorted(self.urls))

    def to_json(self) -> str:
        return json.dumps(
            {"version": self.version, "endpoints": {str(o): u for o, u in sorted(self.urls.items())}},
            indent=1,
            sort_keys=True,
        )


def normalise_url(url: str) -> str:
    """Check that ``url`` is an http(s) base URL with a host and port; drop a trailing slash.

    The port is required so a typo (``http://10.0.0.1`` meant ``:8080``) fails here, loudly,
    instead of as connection errors recorded as ``info`` for the whole run.
    """
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https"):
        raise EndpointsError(f"endpoint {url!r} is not an http:// or https:// URL")
    try:
        port = parsed.port
    except ValueError as exc:
        raise EndpointsError(f"endpoint {url!r} has an invalid port") from exc
    if not parsed.hostname or port is None:
        raise EndpointsError(f"endpoint {url!r} needs a host and a port, e.g. http://127.0.0.1:8080")
    if parsed.query or parsed.fragment:
        raise EndpointsError(f"endpoint {url!r} must be a base URL without ?query or #fragment")
    return url.strip().rstrip("/")


def parse_url_list(text: str) -> Endpoints:
    """Parse ``--urls``: comma-separated ``URL`` (ordinal = position) or ``ORDINAL=URL``."""
    urls: dict[int, str] = {}
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise EndpointsError("no endpoints given: pass --urls http://HOST:PORT[,...] or a StatefulSet to resolve")
    for position, item in enumerate(items):
        ordinal_text, sep, url = item.partition("=")
        if sep and ordinal_text.strip().isdigit():
            ordinal = int(ordinal_text)
        else:
            ordinal, url = position, item
        if ordinal in urls:
            raise EndpointsError(f"ordinal {ordinal} is given twice in --urls")
        urls[ordinal] = normalise_url(url)
    return Endpoints(urls=urls)


def from_json(text: str, *, source: str = "endpoints file") -> Endpoints:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EndpointsError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("endpoints"), dict):
        raise EndpointsError(f'{source} must be an object with an "endpoints" object')
    urls: dict[int, str] = {}
    for key, url in raw["endpoints"].items():
        if not str(key).isdigit() or not isinstance(url, str):
            raise EndpointsError(f"{source}: entry {key!r} must map an ordinal to a URL string")
        urls[int(key)] = normalise_url(url)
    version = raw.get("version", 0)
    if not isinstance(version, int):
        raise EndpointsError(f"{source}: version must be an integer")
    return Endpoints(urls=urls, version=version)


def read(path: Path) -> Endpoints:
    """Read the file; a missing or malformed file is an :class:`EndpointsError`."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise EndpointsError(f"no endpoints file at {path}") from exc
    except OSError as exc:
        raise EndpointsError(f"cannot read endpoints file {path}: {exc.strerror}") from exc
    return from_json(text, source=str(path))


def write(path: Path, urls: Mapping[int, str], *, version: int | None = None) -> Endpoints:
    """Atomically replace ``path`` with ``urls``; the version goes up by one unless given.

    The temporary file is created in the same directory so ``os.replace`` is a rename on one
    filesystem: readers see the old file or the new one. No fsync: the file lives on the
    harness's disk and is rebuilt from the cluster after a harness crash.
    """
    clean = {int(o): normalise_url(u) for o, u in urls.items()}
    if version is None:
        try:
            version = read(path).version + 1
        except EndpointsError:
            version = 1
    endpoints = Endpoints(urls=clean, version=version)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(endpoints.to_json() + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return endpoints


class Follower:
    """Re-reads the endpoints file only when it was replaced.

    ``os.replace`` gives the file a new inode, so comparing (inode, mtime, size) from a
    ``stat`` is enough to notice a rewrite without parsing JSON on every connection error.
    A file that is briefly unreadable keeps the last good mapping (the harness may be
    between a delete and a write on an odd filesystem); the error is returned for logging.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self.current = read(path)
        self._key = self._stat_key()

    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """Re-read if the file changed; True when the mapping changed."""
        key = self._stat_key()
        if key is None or key == self._key:
            return False
        try:
            fresh = read(self.path)
        except EndpointsError:
            return False
        self._key = key
        changed = dict(fresh.urls) != dict(self.current.urls)
        self.current = fresh
        return changed

    def url(self, ordinal: int) -> str | None:
        return self.current.urls.get(ordinal)
