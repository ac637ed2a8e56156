"""The real checkpoint writer on a lazyfs mount, through power losses: the correct writer loses
nothing it acknowledged, and every negative control (``--unsafe-skip STEP``) is caught.

One cycle: mount (a boot), start the writer, let three clients POST small checkpoints until a
random number of them is acknowledged in this cycle (the clients are mid-request then), SIGKILL
the writer, drop everything not durable (power loss), and judge the backing directory with the
offline verifier (``verify_volume``): an acknowledged checkpoint missing (and not excused by
retention: K valid newer ones on the volume) or changed is a loss; anything invalid under a
final name is torn. Acknowledgements accumulate over cycles: durability must hold across all.

Setting the controls up so they can fail: ``parent-fsync`` runs with ``--keep-last 0``, since
with retention the reaper's own parent fsync makes the previous publish durable too
(docs/durability.md). The default run is a few power losses per case; ``-m soak`` repeats each case
over many seeds and prints how many power losses each control needed.
"""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import json
import os
import random
import threading
import time
from pathlib import Path

import pytest
from lazyfs_support import Lazy, Writer, fsync_dir, lazy_at

from harness.workload import identity, layout
from harness.workload import verify as verify_mod
from harness.workload.config import PodIdentity
from harness.workload.fsutil import Disk

pytestmark = [pytest.mark.slow]

CLIENTS = 3


@dataclasses.dataclass
class Run:
    acked: dict[int, tuple[str, str]] = dataclasses.field(default_factory=dict)
    cycle_acks: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    dropped_entries: int = 0
    dropped_files: int = 0
    changed: threading.Condition = dataclasses.field(default_factory=threading.Condition)


def client(port: int, rng: random.Random, run: Run, name: str) -> None:
    """POST small checkpoints until the writer dies; only 200s are acknowledgements."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for n in itertools.count():
            request_id = f"{name}-{n}-{rng.randrange(1 << 30)}"
            shards = rng.randint(1, 4)
            body = json.dumps({"bytes": rng.randint(shards, 48 * 1024), "shards": shards, "request_id": request_id})
            try:
                conn.request("POST", "/checkpoints", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
            except (OSError, http.client.HTTPException, json.JSONDecodeError):
                return  # killed mid-request: indeterminate, never an acknowledgement
            with run.changed:
                if resp.status == 200:
                    run.acked[answer["step"]] = (answer["digest"], request_id)
                    run.cycle_acks += 1
                    run.changed.notify_all()
                elif resp.status not in (500, 503, 507, 409):
                    run.errors.append(f"unexpected answer {resp.status} {answer}")
                    return
    finally:
        conn.close()


def judge(data_dir: Path, run: Run, keep_last: int) -> list[str]:
    """What the checkers would call a failure on this volume, one line each."""
    found, _warnings = verify_mod.verify_volume(data_dir, ordinal=0)
    problems = [f"torn checkpoint under a final name: step {c.step} ({c.problem})"
                for c in found.checkpoints if not c.valid]
    valid = {c.step: c for c in found.checkpoints if c.valid}
    for step, (digest, request_id) in sorted(run.acked.items()):
        c = valid.get(step)
        if c is None:
            newer = sum(1 for s in valid if s > step)
            if not (keep_last and newer >= keep_last):
                problems.append(f"acknowledged step {step} lost ({newer} valid newer on the volume)")
        elif (c.digest, c.request_id) != (digest, request_id):
            problems.append(f"acknowledged step {step} changed")
    return problems


def cycle(lazy: Lazy, rng: random.Random, run: Run, args: list[str]) -> None:
    """One boot-write-power loss cycle (see the module docstring)."""
    writer = Writer(lazy.mnt, *args)
    try:
        ready = writer.await_event("ready")
        newest = max(run.acked, default=None)
        if newest is not None and (ready["latest_valid_step"] or 0) < newest:
            run.errors.append(f"rebooted writer resumes from step {ready['latest_valid_step']}, "
                              f"older than acknowledged step {newest}")
        port = int(writer.await_event("listening")["port"])
        target = rng.randint(2, 12)
        with run.changed:
            run.cycle_acks = 0
        threads = [threading.Thread(target=client, args=(port, random.Random(rng.random()), run, f"c{i}"), daemon=True)
                   for i in range(CLIENTS)]
        for t in threads:
            t.start()
        with run.changed:
            assert run.changed.wait_for(lambda: run.cycle_acks >= target, 60), \
                f"only {run.cycle_acks} of {target} checkpoints acknowledged in 60s: {writer.events[-3:]}"
    finally:
        writer.kill()
    for t in threads:
        t.join(30)
    dropped = lazy.power_loss()
    run.dropped_entries += dropped["undurable_entries"]
    run.dropped_files += dropped["files_with_undurable_data"]


def power_losses(lazy: Lazy, seed: int, args: list[str], *, keep_last: int, limit: int,
                 stop_when_caught: bool) -> tuple[Run, int | None, list[str]]:
    """Up to ``limit`` cycles; returns the run, the power loss that first showed a problem, and it."""
    rng = random.Random(seed)
    run = Run()
    for loss in range(1, limit + 1):
        if loss > 1:
            lazy.remount()
        cycle(lazy, rng, run, ["--keep-last", str(keep_last), *args])
        assert not run.errors, run.errors
        problems = judge(lazy.backing, run, keep_last)
        if problems and stop_when_caught:
            return run, loss, problems
        assert stop_when_caught or not problems, f"power loss {loss}: {problems[:5]}"
    return run, None, []


@pytest.mark.parametrize("keep_last", [3, 0])
def test_the_correct_writer_loses_nothing_acknowledged(lazy: Lazy, harness_seed: int, keep_last: int) -> None:
    run, _, _ = power_losses(lazy, harness_seed, [], keep_last=keep_last, limit=4, stop_when_caught=False)
    assert run.acked, "nothing was acknowledged: the test proved nothing"
    assert run.dropped_entries + run.dropped_files > 0, "no power loss dropped anything: no fault, no verdict"


#: (control, keep-last): each set up so that it can fail
CONTROLS = [("file-fsync", 3), ("flush", 3), ("tmpdir-fsync", 3), ("parent-fsync", 0), ("atomic-rename", 3)]
CONTROL_LIMIT = 10


@pytest.mark.parametrize(("control", "keep_last"), CONTROLS, ids=[c for c, _ in CONTROLS])
def test_each_negative_control_is_caught(lazy: Lazy, harness_seed: int, control: str, keep_last: int,
                                         record_property: pytest.RecordProperty) -> None:
    _run, caught_at, problems = power_losses(lazy, harness_seed, ["--unsafe-skip", control], keep_last=keep_last,
                                             limit=CONTROL_LIMIT, stop_when_caught=True)
    assert caught_at is not None, f"--unsafe-skip {control} survived {CONTROL_LIMIT} power losses unnoticed"
    record_property("power_losses_to_catch", caught_at)
    print(f"\n--unsafe-skip {control} (keep-last {keep_last}): caught at power loss {caught_at}: {problems[0]}")


def _soak_only(request: pytest.FixtureRequest) -> None:
    if "soak" not in (request.config.getoption("-m") or ""):
        pytest.skip("soak run: select it with -m soak")


SOAK_SEEDS = int(os.environ.get("LAZYFS_SOAK_SEEDS", "20"))


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("control", "keep_last"), [*CONTROLS, ("parent-fsync", 3)],
                         ids=[*(c for c, _ in CONTROLS), "parent-fsync-keep3"])
def test_soak_power_losses_to_catch_each_control(tmp_path: Path, control: str, keep_last: int,
                                                 request: pytest.FixtureRequest) -> None:
    """The distribution behind the default test's single number: many seeds (LAZYFS_SOAK_SEEDS),
    a fresh volume each."""
    _soak_only(request)
    counts: list[int | None] = []
    for seed in range(SOAK_SEEDS):
        with lazy_at(tmp_path / f"seed{seed}") as lazy:
            _run, caught_at, _ = power_losses(lazy, seed, ["--unsafe-skip", control], keep_last=keep_last,
                                              limit=CONTROL_LIMIT, stop_when_caught=True)
        counts.append(caught_at)
    caught = sorted(c for c in counts if c is not None)
    print(f"\n--unsafe-skip {control} keep-last {keep_last}: caught in {len(caught)}/{len(counts)} seeds; "
          f"power losses to catch: min {caught[0] if caught else '-'} median "
          f"{caught[len(caught) // 2] if caught else '-'} max {caught[-1] if caught else '-'}; all {counts}")
    if (control, keep_last) != ("parent-fsync", 3):  # hidden by retention's fsync at times: reported only
        assert len(caught) == len(counts)


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_soak_the_correct_writer_loses_nothing(lazy: Lazy, harness_seed: int, request: pytest.FixtureRequest) -> None:
    """LAZYFS_SOAK_LOSSES power losses (default 200: issue 11's bar) of the correct writer at keep-last 3."""
    _soak_only(request)
    losses = int(os.environ.get("LAZYFS_SOAK_LOSSES", "200"))
    started = time.monotonic()
    run, _, _ = power_losses(lazy, harness_seed, [], keep_last=3, limit=losses, stop_when_caught=False)
    assert run.acked
    assert run.dropped_entries + run.dropped_files > 0, "no power loss dropped anything: no fault, no verdict"
    print(f"\ncorrect writer, keep-last 3, seed {harness_seed}: {losses} power losses, {len(run.acked)} "
          f"acknowledged checkpoints, 0 lost or torn; dropped {run.dropped_entries} undurable entries and "
          f"undurable data of {run.dropped_files} files; {time.monotonic() - started:.0f} s")


def test_a_crash_between_mkdir_checkpoints_and_its_fsync_loses_nothing_later(lazy: Lazy) -> None:
    """Regression for a writer bug this file system found: boot fsynced the data dir only when
    it created ``checkpoints/`` itself, so after a SIGKILL between that mkdir and its fsync no
    later boot made the entry durable, and a power loss took every acknowledged checkpoint with
    it (fails against harness/workload/app.py at ab6633d).

    The first boot is replayed up to the crash point with the writer's own code (the stamp,
    durable; then ``mkdir checkpoints``, whose fsync the SIGKILL pre-empted); the restarted
    writer must make the entry durable before it acknowledges anything."""
    pod = PodIdentity("ckpt-0", "chaos-test", "ckpt", 0, "data-ckpt-0")
    assert identity.establish(lazy.mnt, pod, Disk()).outcome == "stamped"
    os.mkdir(layout.checkpoints_dir(lazy.mnt))  # ... SIGKILL here, before fsync(data dir)
    run = Run()
    writer = Writer(lazy.mnt, "--keep-last", "3")
    try:
        writer.await_event("ready")
        port = int(writer.await_event("listening")["port"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/checkpoints", json.dumps({"bytes": 1000, "shards": 1, "request_id": "r"}))
        answer = json.loads(conn.getresponse().read())
        conn.close()
        run.acked[answer["step"]] = (answer["digest"], "r")
    finally:
        writer.kill()
    fsync_dir(str(lazy.mnt / "checkpoints"))  # what is inside is durable either way: only the entry matters
    lazy.power_loss()
    assert judge(lazy.backing, run, 3) == []
