"""One folder per run: ``reports/<UTC start>-<scenario>/``, and ``reports/latest`` pointing at the newest.

A run folder holds everything needed to judge the run again without a cluster::

    run.json        who/what/when: seed, settings, expectations, versions, cluster kind, start/end
    history/        one JSONL file per recording process (harness.history)
    facts.json      what was read back after recovery (harness.facts)
    results.json    the verdicts of the live run
    results.check.json   written only by ``harness check --write`` (never results.json)

Every file is written atomically (temporary file in the same folder, fsync, rename, fsync
the folder), so a crash leaves the old file or the new one, never half of one. A stored run
opened for checking (:class:`StoredRun`) is read-only apart from ``results.check.json``:
re-judging a run must never change the evidence. The creating process (:class:`Run`) may
write facts once and update run.json's end time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast, get_args

import harness
from harness import facts, history

REPORTS_DIR = Path("reports")
LATEST = "latest"
RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
CHECK_RESULTS_FILE = "results.check.json"
FORMAT = 1
#: packages whose versions go into run.json (a run is only comparable to runs with the same stack)
KEY_PACKAGES = ("kubernetes", "typer", "rich", "locust", "pulumi", "pulumi-kubernetes", "pytest", "hypothesis",
                "blake3", "tenacity")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


Outcome = Literal["finished", "interrupted", "failed"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


class StoreError(Exception):
    """A run folder cannot be created, found or read; the message says which and where."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """The contents of run.json."""

    name: str
    scenario: str
    seed: int
    cluster_kind: str
    started: str
    ended: str | None = None
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    expectations: Mapping[str, object] = dataclasses.field(default_factory=dict)
    versions: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    format: int = FORMAT
    #: how the run ended: None while running (or a crash left it so), else finished / interrupted
    #: (Ctrl-C) / failed (the harness or the cluster broke before the read-back)
    outcome: Outcome | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "format": self.format, "name": self.name, "scenario": self.scenario, "seed": self.seed,
            "cluster_kind": self.cluster_kind, "started": self.started, "ended": self.ended,
            "outcome": self.outcome,
            "settings": dict(self.settings), "expectations": dict(self.expectations),
            "versions": dict(self.versions),
        }

    @staticmethod
    def from_dict(raw: Mapping[str, object], where: Path) -> RunInfo:
        def need(key: str, kind: type) -> object:
            if key not in raw:
                raise StoreError(f"{where} lacks field {key!r}")
            value = raw[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise StoreError(f"{where}: field {key!r} should be {kind.__name__}, got {value!r}")
            return value

        ended = raw.get("ended")
        if ended is not None and not isinstance(ended, str):
            raise StoreError(f"{where}: field 'ended' should be a string or null, got {ended!r}")
        outcome = raw.get("outcome")
        if outcome is not None and outcome not in OUTCOMES:
            raise StoreError(f"{where}: field 'outcome' should be one of {', '.join(OUTCOMES)} or null, "
                             f"got {outcome!r}")
        versions = raw.get("versions", {})
        return RunInfo(
            name=cast(str, need("name", str)),
            scenario=cast(str, need("scenario", str)),
            seed=cast(int, need("seed", int)),
            cluster_kind=cast(str, need("cluster_kind", str)),
            started=cast(str, need("started", str)),
            ended=ended,
            outcome=outcome,
            settings=cast(dict[str, object], need("settings", dict)) if "settings" in raw else {},
            expectations=cast(dict[str, object], need("expectations", dict)) if "expectations" in raw else {},
            versions=cast(dict[str, str | None], versions) if isinstance(versions, dict) else {},
            format=cast(int, need("format", int)) if "format" in raw else FORMAT,
        )


def versions() -> dict[str, str | None]:
    """Python, harness and key package versions (None when a package is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "harness": harness.__version__}
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old or the new file, whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_scenario(scenario: str) -> str:
    """A scenario name (or pytest node id) as a folder-name part: letters, digits, ``._-``."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", scenario).strip("-.")[:100].strip("-.")
    if not s:
        raise StoreError(f"scenario name {scenario!r} has no letters or digits to name a run folder with")
    return s


def utc_stamp(when: dt.datetime) -> str:
    if when.tzinfo is None:
        raise StoreError("run start time must be timezone-aware (UTC)")
    return when.astimezone(dt.UTC).strftime(_TIME_FORMAT)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _make_unique_folder(base: Path, stem: str) -> Path:
    """mkdir is the lock: two runs starting in the same second get ``stem`` and ``stem-2``."""
    for n in range(1, 10_000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise StoreError(f"cannot find a free run folder name for {stem} under {base}")


def update_latest(base: Path, target: Path) -> None:
    """Point ``base/latest`` at ``target`` atomically: a new symlink under a temporary name,
    renamed over the old one, so readers see the old run or the new one, never nothing."""
    link = base / LATEST
    tmp = base / f".{LATEST}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(target.name, tmp)
    try:
        if link.exists() and not link.is_symlink():
            raise StoreError(f"{link} is a real file or folder, not a symlink; move it away so 'latest' can be updated")
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(base)


class Run:
    """A run folder being written by the run that owns it."""

    def __init__(self, path: Path, info: RunInfo) -> None:
        self.path = path
        self.info = info

    @property
    def history_dir(self) -> Path:
        return self.path / history.HISTORY_DIR

    def history_writer(self, process: str, *, fsync: bool = False) -> history.HistoryWriter:
        return history.HistoryWriter(self.history_dir, process, fsync=fsync)

    def write_facts(self, run_facts: facts.RunFacts) -> Path:
        """Store the facts read back after recovery; once — facts are evidence, never rewritten."""
        path = self.path / facts.FACTS_FILE
        if path.exists():
            raise StoreError(f"{path} already exists; facts are written once per run")
        _write_json(path, run_facts.to_dict())
        return path

    def write_results(self, results: Mapping[str, object]) -> Path:
        path = self.path / RESULTS_FILE
        _write_json(path, dict(results))
        return path

    def record_settings(self, **more: object) -> RunInfo:
        """Add to run.json's settings what is known only once the run folder exists (where the run
        runs: the system's description); before anything is deployed, never after."""
        info = dataclasses.replace(self.info, settings={**self.info.settings, **more})
        json.dumps(info.to_dict())  # must be JSON, as at creation: fail before anything changes
        _write_json(self.path / RUN_FILE, info.to_dict())
        self.info = info
        return info

    def finish(self, when: dt.datetime | None = None, outcome: Outcome = "finished") -> RunInfo:
        """Record the end time and how the run ended in run.json (its last rewrite)."""
        self.info = dataclasses.replace(self.info, ended=_iso(when or dt.datetime.now(dt.UTC)), outcome=outcome)
        _write_json(self.path / RUN_FILE, self.info.to_dict())
        return self.info


def create_run(
    scenario: str,
    *,
    seed: int,
    cluster_kind: str,
    settings: Mapping[str, object] | None = None,
    expectations: Mapping[str, object] | None = None,
    base: Path = REPORTS_DIR,
    now: dt.datetime | None = None,
) -> Run:
    """Create ``base/<UTC start>-<scenario>/`` with its run.json and history folder, and point
    ``base/latest`` at it."""
    start = now or dt.datetime.now(dt.UTC)
    stem = f"{utc_stamp(start)}-{safe_scenario(scenario)}"
    try:
        base.mkdir(parents=True, exist_ok=True)
        path = _make_unique_folder(base, stem)
    except OSError as exc:
        raise StoreError(f"cannot create a run folder under {base}: {exc.strerror or exc}") from exc
    info = RunInfo(
        name=path.name, scenario=scenario, seed=seed, cluster_kind=cluster_kind, started=_iso(start),
        settings=dict(settings or {}), expectations=dict(expectations or {}), versions=versions(),
    )
    json.dumps(info.to_dict())  # settings/expectations must be JSON: fail here, not at the end of the run
    (path / history.HISTORY_DIR).mkdir()
    _write_json(path / RUN_FILE, info.to_dict())
    update_latest(base, path)
    return Run(path, info)


class StoredRun:
    """A finished (or crashed) run folder, opened to be judged again: read-only evidence."""

    def __init__(self, path: Path, info: RunInfo) -> None:
        self.path = path
        self.info = info

    @staticmethod
    def open(path: Path) -> StoredRun:
        if not path.exists():
            raise StoreError(f"no run folder at {path}")
        if not path.is_dir():
            raise StoreError(f"{path} is a file, not a run folder (expected reports/<utc>-<scenario>/)")
        run_file = path / RUN_FILE
        try:
            raw = json.loads(run_file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StoreError(
                f"{path} has no {RUN_FILE}: not a run folder (expected reports/<utc>-<scenario>/)"
            ) from exc
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {run_file}: {exc}") from exc
        if not isinstance(raw, dict):
            raise StoreError(f"{run_file} is not a JSON object")
        return StoredRun(path, RunInfo.from_dict(raw, run_file))

    def history(self) -> list[history.Op]:
        try:
            return history.read_history(self.path / history.HISTORY_DIR)
        except history.HistoryError as exc:
            raise StoreError(str(exc)) from exc

    def has_facts(self) -> bool:
        """Whether the run got as far as reading its volumes back (an interrupted run may not)."""
        return (self.path / facts.FACTS_FILE).exists()

    def facts(self) -> facts.RunFacts:
        try:
            return facts.RunFacts.load(self.path / facts.FACTS_FILE)
        except facts.FactsError as exc:
            raise StoreError(str(exc)) from exc

    def results(self) -> Mapping[str, object] | None:
        path = self.path / RESULTS_FILE
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        return cast(dict[str, object], raw) if isinstance(raw, dict) else None

    def write_check_results(self, results: Mapping[str, object]) -> Path:
        """The one file a re-check may write; the live run's results.json stays untouched."""
        path = self.path / CHECK_RESULTS_FILE
        _write_json(path, dict(results))
        return path


def open_run(path: Path) -> StoredRun:
    return StoredRun.open(path)


def latest_run(scenario: str, base: Path = REPORTS_DIR) -> StoredRun | None:
    """The newest stored run of ``scenario`` under ``base`` (folders sort by their UTC start);
    unreadable folders are passed over."""
    stem = safe_scenario(scenario)
    for path in sorted(base.glob(f"*-{stem}"), reverse=True):
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            run = StoredRun.open(path)
        except StoreError:
            continue
        if run.info.scenario == scenario:
            return run
    return None


#: the run folders the last scenario session created (``harness check`` with no argument judges them)
LAST_SESSION = ".last-session.json"


def write_last_session(runs: list[Path], base: Path = REPORTS_DIR) -> Path:
    path = base / LAST_SESSION
    atomic_write_text(path, json.dumps([p.name for p in runs], indent=1) + "\n")
    return path


def last_session(base: Path = REPORTS_DIR) -> list[Path]:
    """The run folders of the last scenario session, oldest first; raises when there is none."""
    path = base / LAST_SESSION
    try:
        names = json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"no scenario session recorded in {base}: run `make run` first, or name a run") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StoreError(f"{path} is not a list of run folder names")
    return [base / n for n in names]
