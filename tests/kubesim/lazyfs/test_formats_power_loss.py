"""Library checkpoint formats through power losses (docs/formats.md): what each library leaves
un-durable by default, and that the hardened variant of each loses nothing.

Two kinds of test:

* **What the library itself leaves out** — one save by the library alone on a lazyfs mount, then
  exactly the fsyncs a careful caller would add *except* the one under test, a power loss, and a
  look at what survived. Deterministic: each names one missing fsync.
* **The writer through power losses** (as ``test_writer_power_loss.py``): boot, three clients
  writing until a random number of checkpoints is acknowledged, SIGKILL, power loss, and the
  offline verifier — which reads every checkpoint with its library — judges the backing
  directory. Every loss is classified by what the backing directory shows (why it was lost).
  Hardened variants must lose nothing; the default variants of libraries that publish without
  a directory fsync are *expected* to lose acknowledged checkpoints (the test asserts that they
  do, as it asserts that a negative control is caught: a test that cannot fail proves nothing).

``-m soak`` runs the measurement behind the table in docs/formats.md (more power losses, keep-last
0 and 3) and prints it.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import itertools
import json
import os
import random
import threading
from pathlib import Path

import pytest
from lazyfs_support import Lazy, Writer, fsync_dir, lazy_at

from harness.workload import config, formats, fsutil, layout, tensors
from harness.workload import verify as verify_mod

pytestmark = [pytest.mark.slow]

CLIENTS = 3
LIBRARY_FORMATS = [f for f in config.CHECKPOINT_FORMATS if f != "raw"]


def installed(fmt: str) -> object:
    """A pytest param that skips, in one line naming what to install, when the library is missing."""
    problem = config.missing_library(fmt)  # type: ignore[arg-type]
    return pytest.param(fmt, id=fmt, marks=pytest.mark.skipif(problem is not None, reason=problem or ""))


# ---- what the library itself leaves out ---------------------------------------------------------
def _stamp(step: int) -> formats.Stamp:
    return formats.Stamp(step, 0, "epoch", "volume", 0.0, f"r{step}")


def _layers() -> tuple[tensors.Layer, ...]:
    return tensors.plan(64 * 1024, 2)


def _sizes(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for here, _dirs, files in os.walk(root):
        for name in files:
            out[os.path.relpath(os.path.join(here, name), root)] = os.path.getsize(os.path.join(here, name))
    return out


def _fsync_dirs_only(root: Path) -> None:
    """Every directory under ``root`` and ``root``'s parent: names durable, file data not."""
    for here, _dirs, _files in sorted(os.walk(root), key=lambda w: -len(Path(w[0]).parts)):
        fsync_dir(here)
    fsync_dir(str(root.parent))


@pytest.mark.parametrize("fmt", [installed("safetensors")])
def test_safetensors_save_file_fsyncs_nothing(lazy: Lazy, fmt: str) -> None:
    """save_file's temp file + rename leaves the data un-fsynced: with every name made durable,
    the shard is empty after a power loss."""
    work = lazy.mnt / "ck"
    formats.library("safetensors").save(work, "safetensors", _layers(), _stamp(1), fsutil.Disk())
    _fsync_dirs_only(work)
    lazy.power_loss()
    sizes = _sizes(lazy.backing / "ck")
    shards = {k: v for k, v in sizes.items() if k.endswith(".safetensors")}
    assert shards, sizes
    assert all(v == 0 for v in shards.values()), sizes


@pytest.mark.parametrize("fmt", [installed("torch-dcp")])
def test_dcp_fsyncs_data_but_its_metadata_fsync_precedes_the_bytes(lazy: Lazy, fmt: str) -> None:
    """DCP fsyncs each data file, and calls fsync on .metadata.tmp before pickle's bytes left the
    buffered stream: with every name made durable, the data file is whole and .metadata empty."""
    work = lazy.mnt / "ck"
    formats.library("torch-dcp").save(work, "torch-dcp", _layers(), _stamp(1), fsutil.Disk())
    written = _sizes(work)
    _fsync_dirs_only(work)
    lazy.power_loss()
    sizes = _sizes(lazy.backing / "ck")
    data = [k for k in written if k.endswith(".distcp")]
    assert data, written
    assert all(sizes[k] == written[k] > 0 for k in data), (written, sizes)
    assert written[".metadata"] > 0, written
    assert sizes[".metadata"] == 0, (written, sizes)


@pytest.mark.parametrize("fmt", [installed("orbax")])
def test_orbax_fsyncs_tensorstore_data_but_not_its_own_files_or_directories(lazy: Lazy, fmt: str) -> None:
    """tensorstore fsyncs the array files and the directories they are in; Orbax's own files
    (_CHECKPOINT_METADATA, the pytree's _METADATA, the JSON item, commit_success.txt) and the
    checkpoint directory's own entries are never fsynced. With only the publishing rename made
    durable the checkpoint comes back empty; with every directory made durable, Orbax's own files
    come back empty while tensorstore's data is whole."""
    lib = formats.library("orbax")
    lib.save(lazy.mnt / "renamed", "orbax", _layers(), _stamp(1), fsutil.Disk())
    lib.save(lazy.mnt / "dirs", "orbax", _layers(), _stamp(2), fsutil.Disk())
    written = _sizes(lazy.mnt / "dirs")
    _fsync_dirs_only(lazy.mnt / "dirs")  # also fsyncs the mount root: both renames are durable
    lazy.power_loss()
    assert (lazy.backing / "renamed").is_dir()
    assert not os.listdir(lazy.backing / "renamed")
    sizes = _sizes(lazy.backing / "dirs")
    own = [k for k in written if os.path.basename(k) in ("_CHECKPOINT_METADATA", "_METADATA", "commit_success.txt")]
    assert own, written
    assert all(sizes.get(k) == 0 for k in own), (written, sizes)
    data = [k for k in written if "/d/" in f"/{k}" and written[k] > 0]
    assert data, written
    assert all(sizes.get(k) == written[k] for k in data), (written, sizes)


# ---- the writer through power losses -------------------------------------------------------------
@dataclasses.dataclass
class Run:
    #: request id -> (step, digest): a step lost to a power loss is published again after the
    #: reboot, so steps do not identify acknowledgements across power losses
    acked: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    cycle_acks: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    changed: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    #: acknowledged checkpoints lost or torn, by why (what the backing directory shows)
    lost: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    torn_unacked: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: acknowledged request ids and never-acknowledged steps already counted as lost or torn
    judged: set[str] = dataclasses.field(default_factory=set)


def client(port: int, rng: random.Random, run: Run, name: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for n in itertools.count():
            request_id = f"{name}-{n}-{rng.randrange(1 << 30)}"
            shards = rng.randint(1, 4)
            body = json.dumps({"bytes": rng.randint(4 * shards, 48 * 1024), "shards": shards,
                               "request_id": request_id})
            try:
                conn.request("POST", "/checkpoints", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
            except (OSError, http.client.HTTPException, json.JSONDecodeError):
                return
            with run.changed:
                if resp.status == 200:
                    run.acked[request_id] = (answer["step"], answer["digest"])
                    run.cycle_acks += 1
                    run.changed.notify_all()
                elif resp.status not in (500, 503, 507, 409):
                    run.errors.append(f"unexpected answer {resp.status} {answer}")
                    return
    finally:
        conn.close()


def why(ckdir: Path, step: int, problem: str | None) -> str:
    """What the backing directory shows about a lost or torn checkpoint, as a cause."""
    final = ckdir / layout.final_name(step)
    if not final.exists():
        tmp = [n for n in os.listdir(ckdir) if n.startswith(final.name) and layout.is_temp_name(n)]
        if tmp:
            return "publishing rename undone: parent directory not fsynced"
        return "step directory's entry not fsynced: the directory is gone"
    sizes = _sizes(final)
    if not sizes:
        return "directory entries not fsynced: the step directory came back empty"
    if sizes.get(".metadata") == 0:
        return "DCP .metadata empty: its fsync ran before its bytes were flushed"
    empty = sorted(k for k, v in sizes.items() if v == 0)
    if empty:
        return f"file data not fsynced: {os.path.basename(empty[0])} empty"
    text = problem or "?"
    if "missing" in text or "not found" in text.lower() or "no .metadata" in text:
        return f"file's directory entry not fsynced: {text[:90]}"
    return f"library reader fails: {text[:90]}"


def judge(lazy: Lazy, run: Run, keep_last: int) -> list[str]:
    found, _warnings = verify_mod.verify_volume(lazy.backing, ordinal=0)
    ckdir = layout.checkpoints_dir(lazy.backing)
    by_step = {c.step: c for c in found.checkpoints}
    valid = {s for s, c in by_step.items() if c.valid}
    problems: list[str] = []
    acked_steps = {step for step, _digest in run.acked.values()}
    for c in found.checkpoints:
        key = f"torn-step-{c.step}-{c.problem}"
        if not c.valid and c.step not in acked_steps and key not in run.judged:
            run.torn_unacked[why(ckdir, c.step, c.problem)] += 1
            run.judged.add(key)
            problems.append(f"torn (never acknowledged) step {c.step}: {c.problem}")
    for request_id, (step, digest) in sorted(run.acked.items(), key=lambda kv: kv[1][0]):
        if request_id in run.judged:
            continue
        c = by_step.get(step)
        if c is not None and c.valid and (c.digest, c.request_id) == (digest, request_id):
            continue
        if c is None and keep_last and sum(1 for s in valid if s > step) >= keep_last:
            continue  # retired by retention
        run.lost[why(ckdir, step, c.problem if c and c.request_id in (None, request_id) else None)] += 1
        run.judged.add(request_id)
        problems.append(f"acknowledged step {step} ({request_id}) {'torn' if c else 'lost'}: "
                        f"{c.problem if c else 'missing'}")
    return problems


def cycle(lazy: Lazy, rng: random.Random, run: Run, args: list[str]) -> None:
    writer = Writer(lazy.mnt, *args)
    threads: list[threading.Thread] = []
    try:
        writer.await_event("ready", timeout=60)
        port = int(writer.await_event("listening")["port"])
        target = rng.randint(2, 10)
        with run.changed:
            run.cycle_acks = 0
        threads = [threading.Thread(target=client, args=(port, random.Random(rng.random()), run, f"c{i}"),
                                    daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        with run.changed:
            assert run.changed.wait_for(lambda: run.cycle_acks >= target, 120), \
                f"only {run.cycle_acks} of {target} acknowledged in 120s: {writer.events[-3:]}"
    finally:
        writer.kill()
    for t in threads:
        t.join(30)
    lazy.power_loss()


def power_losses(lazy: Lazy, seed: int, fmt: str, *, keep_last: int, limit: int) -> tuple[Run, list[str]]:
    rng = random.Random(seed)
    run = Run()
    problems: list[str] = []
    for loss in range(1, limit + 1):
        if loss > 1:
            lazy.remount()
        cycle(lazy, rng, run, ["--keep-last", str(keep_last), "--format", fmt])
        assert not run.errors, run.errors
        problems += judge(lazy, run, keep_last)
    return run, problems


#: default variants expected to lose acknowledged checkpoints on power loss (none fsyncs the
#: directory it publishes into); every hardened variant must lose nothing
EXPECTED_TO_LOSE = frozenset({"safetensors", "torch-dcp", "orbax"})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_workload_formats.py
@pytest.mark.parametrize("fmt", [installed(f) for f in LIBRARY_FORMATS])
def test_power_loss_per_format(lazy: Lazy, harness_seed: int, fmt: str,
                               record_property: pytest.RecordProperty) -> None:
    run, problems = power_losses(lazy, harness_seed, fmt, keep_last=3, limit=3)
    assert run.acked, "nothing was acknowledged: the test proved nothing"
    record_property("acknowledged", len(run.acked))
    record_property("lost_by_cause", dict(run.lost))
    print(f"\n{fmt}: {len(run.acked)} acknowledged over 3 power losses; lost or torn: {sum(run.lost.values())} "
          f"{dict(run.lost)}; torn, never acknowledged: {dict(run.torn_unacked)}")
    if fmt in EXPECTED_TO_LOSE:
        assert run.lost, f"{fmt} (default) lost nothing over 3 power losses: expected to, as it publishes " \
                         "without fsyncing the directory; is the test still able to fail?"
    else:
        assert not problems, f"{fmt}: {problems[:5]}"


@pytest.mark.soak
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("keep_last", [0, 3])
def test_soak_format_power_loss_table(tmp_path: Path, keep_last: int, request: pytest.FixtureRequest) -> None:
    """The numbers in docs/formats.md: every installed format (raw as the reference),
    FORMAT_SOAK_LOSSES power losses each (default 8) on a fresh volume, seed 1."""
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("soak run: select it with -m soak")
    losses = int(os.environ.get("FORMAT_SOAK_LOSSES", "8"))
    lines = []
    for fmt in config.CHECKPOINT_FORMATS:
        if config.missing_library(fmt) is not None:
            lines.append(f"| {fmt} | not installed |")
            continue
        with lazy_at(tmp_path / f"{fmt}-{keep_last}") as lazy:
            run, _problems = power_losses(lazy, 1, fmt, keep_last=keep_last, limit=losses)
        causes = "; ".join(f"{n} x {c}" for c, n in run.lost.most_common()) or "-"
        torn = "; ".join(f"{n} x {c}" for c, n in run.torn_unacked.most_common()) or "-"
        lines.append(f"| {fmt} | {keep_last} | {losses} | {len(run.acked)} | {sum(run.lost.values())} | {causes} "
                     f"| {torn} |")
    print("\n| format | keep-last | power losses | acknowledged | lost or torn | why | torn, never acknowledged |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
