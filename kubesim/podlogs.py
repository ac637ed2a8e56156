"""pods/log for the process kubelets: read the container log files the sandbox shims write.

The kubelets run on this machine, so the API server reads their files directly instead of
proxying to a kubelet HTTP endpoint (upstream: apiserver → kubelet ``/containerLogs``). Layout,
written by ``kubesim.kubelet`` (one file per container instance, named by its restart count)::

    DIR/nodes/<node>/pods/<ns>_<pod>_<uid>/<container>/<restartCount>.log

The highest-numbered file is the running (or last) instance and the next lower one is
``previous`` — found by listing, not from ``status.restartCount``, so a status update that lags
the kubelet's new file never serves the wrong instance. Errors follow upstream's wording
(``pkg/kubelet/kuberuntime/kuberuntime_container.go`` / ``pkg/kubelet/kubelet_pods.go``).

Each file is in the CRI log format (``kubesim/kubelet/sandbox.py`` ``LogCopier``, as containerd
writes it): ``<RFC3339Nano> <stdout|stderr> <F|P> <content>``. Reading follows
``pkg/kubelet/kuberuntime/logs/logs.go``: ``tailLines`` counts file lines from the end (a
partial record is a line), ``sinceSeconds``/``sinceTime`` skip records older than the bound,
``timestamps`` prefixes every record with its time in RFC3339NanoFixed, ``limitBytes`` cuts the
output, ``stream`` (Stdout/Stderr/All) picks records by stream. A line that is not a CRI record
(a file written by hand, or the shim's own dying words) is passed through as stdout, stamped with
the previous record's time.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubesim.apiserver import errors, fielderrors, subresources

_LOG_NAME = re.compile(r"^(\d+)\.log$")
_CRI = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([^ \n]*) ")
_TIME = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")
_READ_BLOCK = 64 * 1024


def container_dir(state_dir: Path, pod: Mapping[str, Any], container: str) -> Path:
    meta = pod.get("metadata") or {}
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    return (state_dir / "nodes" / node / "pods" / f"{meta.get('namespace')}_{meta.get('name')}_{meta.get('uid')}"
            / container)


def instances(directory: Path) -> list[tuple[int, Path]]:
    """``(restartCount, path)`` of every log file of the container, oldest first."""
    try:
        names = [p for p in directory.iterdir() if _LOG_NAME.match(p.name)]
    except OSError:
        return []
    return sorted((int(_LOG_NAME.match(p.name).group(1)), p) for p in names)  # type: ignore[union-attr]


# ----- options ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LogOptions:
    """PodLogOptions as the kubelet applies them (logs.go ``NewLogOptions``)."""

    tail: int | None = None
    limit: int | None = None
    since_ns: int | None = None
    timestamps: bool = False
    follow: bool = False
    previous: bool = False
    stream: str = "All"


def _bool(query: Mapping[str, str], key: str) -> bool:
    """Go's strconv.ParseBool, which the query-parameter decoder uses."""
    raw = str(query.get(key, "") or "")
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def _int(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def parse_time(text: str) -> int:
    """An RFC 3339 time (what metav1.Time carries in a query) as nanoseconds since the epoch."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise errors.bad_request(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse') from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def options(query: Mapping[str, str], pod_name: str, now_ns: int | None = None) -> LogOptions:
    """Parse and validate (ValidatePodLogOptions: 422 Invalid PodLogOptions) the query of a pods/log request."""
    tail, limit, since_seconds = _int(query, "tailLines"), _int(query, "limitBytes"), _int(query, "sinceSeconds")
    since_time = str(query.get("sinceTime") or "")
    errs: list[fielderrors.FieldError] = []
    if tail is not None and tail < 0:
        errs.append(fielderrors.FieldError("FieldValueInvalid", "tailLines", "must be greater than or equal to 0",
                                           tail))
    if limit is not None and limit < 1:
        errs.append(fielderrors.FieldError("FieldValueInvalid", "limitBytes", "must be greater than 0", limit))
    if since_seconds is not None and since_time:
        errs.append(fielderrors.FieldError("FieldValueForbidden", "",
                                           "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif since_seconds is not None and since_seconds < 1:
        errs.append(fielderrors.FieldError("FieldValueInvalid", "sinceSeconds", "must be greater than 0",
                                           since_seconds))
    stream = str(query.get("stream") or "All")
    if stream not in ("All", "Stdout", "Stderr"):
        errs.append(fielderrors.FieldError("FieldValueNotSupported", "stream",
                                           'supported values: "All", "Stderr", "Stdout"', stream))
    if errs:
        raise errors.invalid("", "PodLogOptions", pod_name, errs)
    now = now_ns if now_ns is not None else time.time_ns()
    since_ns = None
    if since_seconds is not None:
        since_ns = now - since_seconds * 1_000_000_000
    elif since_time:
        since_ns = parse_time(since_time)
    return LogOptions(tail=tail, limit=limit, since_ns=since_ns, timestamps=_bool(query, "timestamps"),
                      follow=_bool(query, "follow"), previous=_bool(query, "previous"), stream=stream)


# ----- records -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Record:
    ts_ns: int | None
    stream: str
    content: bytes
    """Without the record's own newline for a partial (P) record; with it for a full (F) one."""


def parse_time_bytes(raw: bytes) -> int | None:
    """RFC3339Nano, lenient about the number of fraction digits (timeFormatIn) — nanoseconds since the epoch."""
    m = _TIME.match(raw)
    if m is None:
        return None
    base, fraction, zone = m.group(1).decode(), (m.group(2) or b"").decode(), m.group(3).decode()
    try:
        moment = datetime.datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9])


def parse_record(line: bytes, previous_ts: int | None) -> Record:
    """One file line (ending in ``\\n`` unless it is the file's incomplete last line) as a record."""
    m = _CRI.match(line)
    if m is None:
        return Record(previous_ts, "stdout", line if line.endswith(b"\n") else line + b"\n")
    ts = parse_time_bytes(m.group(1))
    stream = m.group(2).decode()
    content = line[m.end():]
    if m.group(3).split(b":")[0] == b"P" and content.endswith(b"\n"):
        content = content[:-1]
    elif not content.endswith(b"\n"):
        content += b"\n"
    return Record(ts if ts is not None else previous_ts, stream, content)


def format_timestamp(ns: int) -> str:
    """RFC3339NanoFixed (``2006-01-02T15:04:05.000000000Z07:00``) in UTC."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class Writer:
    """logWriter: since, stream selection, timestamps, limitBytes."""

    def __init__(self, opts: LogOptions) -> None:
        self.opts = opts
        self.remaining = opts.limit if opts.limit is not None else math.inf
        self.last_ts: int | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def render(self, record: Record) -> bytes:
        if record.ts_ns is not None:
            self.last_ts = record.ts_ns
        if self.exhausted:
            return b""
        if self.opts.since_ns is not None and (record.ts_ns or 0) < self.opts.since_ns:
            return b""
        if self.opts.stream != "All" and record.stream != self.opts.stream.lower():
            return b""
        line = record.content
        if self.opts.timestamps:
            line = format_timestamp(record.ts_ns or 0).encode() + b" " + line
        if len(line) > self.remaining:
            line = line[:int(self.remaining)]
        self.remaining -= len(line)
        return line


def tail_offset(path: Path, lines: int | None) -> int:
    """FindTailLineStartIndex: where the last ``lines`` complete lines start (an incomplete last line
    does not count); 0 for all of them."""
    if lines is None:
        return 0
    try:
        with path.open("rb") as fh:
            pos = fh.seek(0, os.SEEK_END)
            seen = 0
            while pos > 0:
                start = max(0, pos - _READ_BLOCK)
                fh.seek(start)
                chunk = fh.read(pos - start)
                idx = len(chunk)
                while (idx := chunk.rfind(b"\n", 0, idx)) >= 0:
                    seen += 1
                    if seen == lines + 1:  # the newline before the first wanted line
                        return start + idx + 1
                pos = start
    except OSError:
        return 0
    return 0


def records(path: Path, start: int) -> Iterator[tuple[Record, int]]:
    """(record, offset after it) for every complete line from ``start``; an incomplete last line too."""
    previous: int | None = None
    with path.open("rb") as fh:
        fh.seek(start)
        offset = start
        for line in fh:
            offset += len(line)
            record = parse_record(line, previous)
            previous = record.ts_ns
            yield record, offset


def render_file(path: Path, opts: LogOptions) -> bytes:
    """The whole answer for a non-following read."""
    writer = Writer(opts)
    out: list[bytes] = []
    left = opts.tail
    try:
        for record, _offset in records(path, tail_offset(path, opts.tail)):
            if left is not None:
                if left <= 0:
                    break
                left -= 1
            out.append(writer.render(record))
            if writer.exhausted:
                break
    except OSError:
        return b""
    return b"".join(out)


class Follower:
    """Reads a growing log file record by record (logs.go ReadLogs with follow)."""

    def __init__(self, path: Path, opts: LogOptions) -> None:
        self.path = path
        self.writer = Writer(opts)
        self.offset = tail_offset(path, opts.tail)
        self._fh = path.open("rb")

    def new_records(self, *, final: bool = False) -> list[Record]:
        """Every complete record written since the last call; with ``final`` an incomplete last line too."""
        out: list[Record] = []
        self._fh.seek(self.offset)
        while True:
            line = self._fh.readline()
            if not line or (not line.endswith(b"\n") and not final):
                break
            self.offset += len(line)
            record = parse_record(line, self.writer.last_ts)
            if record.ts_ns is not None:
                self.writer.last_ts = record.ts_ns
            out.append(record)
        return out

    def read_new(self) -> bytes:
        """Output for every complete record written since the last call (an incomplete line waits)."""
        return b"".join(self.writer.render(r) for r in self.new_records())

    def read_rest(self) -> bytes:
        """At the end (the writer is gone): everything left, an incomplete last line included."""
        return b"".join(self.writer.render(r) for r in self.new_records(final=True))

    def close(self) -> None:
        self._fh.close()


# ----- the pods/log answer ---------------------------------------------------------------------------


def _waiting_reason(pod: Mapping[str, Any], container: str) -> str:
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == container:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            return str(waiting.get("reason") or "ContainerCreating")
    return "ContainerCreating"


def log_file(state_dir: Path, pod: Mapping[str, Any], container: str, previous: bool) -> Path:
    """The instance's file, or upstream's 400 when there is none (yet)."""
    name = (pod.get("metadata") or {}).get("name")
    found = instances(container_dir(state_dir, pod, container))
    if previous:
        if len(found) < 2:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return found[-2][1]
    if not found:
        raise errors.bad_request(
            f'container "{container}" in pod "{name}" is waiting to start: {_waiting_reason(pod, container)}')
    return found[-1][1]


def read(state_dir: Path, pod: Mapping[str, Any], container: str, query: Mapping[str, str]) -> bytes:
    """The log bytes ``GET pods/<name>/log`` answers (everything but ``follow``)."""
    opts = options(query, str((pod.get("metadata") or {}).get("name")))
    return render_file(log_file(state_dir, pod, container, opts.previous), opts)


def first_values(query: Mapping[str, Sequence[str]]) -> dict[str, str]:
    return {k: v[-1] if v else "" for k, v in query.items()}


def install(state_dir: Path) -> None:
    """Serve pods/log from this state directory's kubelet log files (the API server's seam)."""
    root = state_dir.resolve()

    def source(pod: dict[str, Any], container: str, query: Mapping[str, str]) -> bytes | None:
        return read(root, pod, container, query)

    subresources.log_source = source

