"""The run's history: an append-only log of operations, Jepsen style.

Every client action and every fault is an *op*. A client records ``invoke`` before it acts
and exactly one completion afterwards: ``ok`` (it happened, e.g. HTTP 200 after the writer's
commit), ``fail`` (it certainly did not happen: the server said nothing was published) or
``info`` (we do not know: timeout, reset, killed mid-request). An exception is ``info``,
never a guessed ``fail``. Checkers judge the history; nothing ever edits it.

Several processes (locust workers, the nemesis, the pytest process) record at once. Each
process appends to its own file, one JSON object per line, written with a single ``write``
on an ``O_APPEND`` descriptor, so lines never interleave; the reader merges the files by
wall time. A crashed process may leave a torn last line: the reader skips it with a warning.

Pairing follows Jepsen: a *process* has at most one outstanding op, so a completion belongs
to the latest invoke of the same process. An invoke never completed (its process died) is
treated as ``info``.

This module does no cluster I/O (an import-linter contract keeps it so).
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal, TypeAlias, cast

log = logging.getLogger(__name__)

OpType: TypeAlias = Literal["invoke", "ok", "fail", "info"]
OP_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})
COMPLETIONS: frozenset[str] = frozenset({"ok", "fail", "info"})

#: JSON-compatible value carried by an op (kept loose on purpose: each ``f`` defines its own).
JsonValue: TypeAlias = (
    bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
)

#: Name of the sub-folder of a run folder that holds one ``*.jsonl`` file per recording process.
HISTORY_DIR = "history"


class HistoryError(Exception):
    """A history file cannot be read at all (missing, not JSONL, wrong fields)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Op:
    """One history entry.

    ``time`` is wall-clock seconds since the epoch (comparable across machines, used to
    merge files); ``mono`` is ``time.monotonic()`` of the recording process (precise
    durations on one machine). ``index`` is the position in the merged history, assigned
    by the reader; writers record their own sequence number there.
    """

    index: int
    time: float
    mono: float
    type: OpType
    process: str
    f: str
    value: JsonValue = None
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_mapping(raw: Mapping[str, object]) -> Op:
        """Build an op from a decoded JSON object, rejecting anything malformed."""
        try:
            op_type = raw["type"]
            if op_type not in OP_TYPES:
                raise HistoryError(f"unknown op type {op_type!r}")
            error = raw.get("error")
            return Op(
                index=int(cast(int, raw["index"])),
                time=float(cast(float, raw["time"])),
                mono=float(cast(float, raw["mono"])),
                type=cast(OpType, op_type),
                process=str(raw["process"]),
                f=str(raw["f"]),
                value=cast(JsonValue, raw.get("value")),
                error=None if error is None else str(error),
            )
        except KeyError as exc:
            raise HistoryError(f"op is missing field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise HistoryError(f"op has a field of the wrong type: {exc}") from exc


@dataclasses.dataclass(frozen=True, slots=True)
class Pair:
    """An invoke with its completion (``None`` when the process never completed it)."""

    invoke: Op
    completion: Op | None

    @property
    def outcome(self) -> OpType:
        """ok / fail / info; an op never completed counts as info (indeterminate)."""
        return "info" if self.completion is None else self.completion.type


class HistoryWriter:
    """Appends ops of one process to its own JSONL file.

    One ``os.write`` per line on an ``O_APPEND`` descriptor: a reader never sees half a
    line unless the process dies inside that write, which the reader tolerates.
    ``fsync`` is optional because the history lives on the harness's disk, not the volume
    under test; ``close`` flushes it.
    """

    def __init__(self, directory: Path, process: str, *, fsync: bool = False) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in process)
        self.path = directory / f"{safe}-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.process = process
        self._fsync = fsync
        self._seq = 0
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def record(
        self,
        type: OpType,
        f: str,
        value: JsonValue = None,
        error: str | None = None,
        *,
        process: str | None = None,
    ) -> Op:
        """Append one op and return it. ``process`` overrides the writer's default name
        (a locust worker records for many users, each its own Jepsen process)."""
        if self._fd is None:
            raise HistoryError(f"history writer {self.path} is closed")
        if type not in OP_TYPES:
            raise ValueError(f"unknown op type {type!r}")
        op = Op(
            index=self._seq,
            time=time.time(),
            mono=time.monotonic(),
            type=type,
            process=process or self.process,
            f=f,
            value=value,
            error=error,
        )
        self._seq += 1
        data = (op.to_json() + "\n").encode()
        # A regular-file write is normally whole; if the kernel ever returns short (signal,
        # nearly full disk), finish the line rather than leave a torn line mid-file.
        written = os.write(self._fd, data)
        while written < len(data):
            written += os.write(self._fd, data[written:])
        if self._fsync:
            os.fsync(self._fd)
        return op

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_file(path: Path) -> Iterator[Op]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HistoryError(f"cannot read history file {path}: {exc.strerror}") from exc
    lines = data.split(b"\n")
    last = len(lines) - 1
    for lineno, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise HistoryError("a line is not a JSON object")
            yield Op.from_mapping(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, HistoryError) as exc:
            # A torn final line (no trailing newline) is what a SIGKILLed writer leaves.
            if lineno == last:
                log.warning("%s:%d: ignoring torn last line (writer crashed?): %s", path, lineno + 1, exc)
                continue
            raise HistoryError(f"{path}:{lineno + 1}: corrupt history line: {exc}") from exc


def history_files(run_or_history_dir: Path) -> list[Path]:
    """The JSONL files of a run folder (``<run>/history/*.jsonl``) or of a history folder."""
    d = run_or_history_dir
    if (d / HISTORY_DIR).is_dir():
        d = d / HISTORY_DIR
    if not d.is_dir():
        raise HistoryError(f"no history folder at {d}")
    return sorted(d.glob("*.jsonl"))


def read_history(source: Path | Iterable[Path]) -> list[Op]:
    """Read and merge history files into one list ordered by wall time, re-indexed 0..n-1.

    ``source`` is a run folder, a history folder, a single file, or several files. Each
    file's own order is kept; time ties between files go to the earlier file (name order).
    """
    if isinstance(source, Path):
        files = [source] if source.is_file() else history_files(source)
    else:
        files = list(source)
    # Merge, never re-sort, each file: a process's own order is the truth for pairing even
    # if its wall clock stepped back (NTP), and heapq.merge keeps each input's order while
    # breaking time ties by file order.
    per_file = [list(_read_file(path)) for path in files]
    merged = heapq.merge(*per_file, key=lambda op: op.time)
    return [dataclasses.replace(op, index=i) for i, op in enumerate(merged)]


def pair(ops: Iterable[Op]) -> list[Pair]:
    """Pair each invoke with the next completion of the same process, in history order.

    A completion with no open invoke is a recording bug: it is logged and skipped. A
    second invoke while one is still open means the first never completed (its process
    lost track of it): the first is closed as indeterminate.
    """
    open_: dict[str, Op] = {}
    pairs: list[Pair] = []
    for op in ops:
        if op.type == "invoke":
            if op.process in open_:
                pairs.append(Pair(open_.pop(op.process), None))
            open_[op.process] = op
        else:
            inv = open_.pop(op.process, None)
            if inv is None:
                log.warning("op %d: %s completion of process %s has no invoke", op.index, op.type, op.process)
                continue
            pairs.append(Pair(inv, op))
    pairs.extend(Pair(inv, None) for inv in open_.values())
    pairs.sort(key=lambda p: p.invoke.index)
    return pairs
