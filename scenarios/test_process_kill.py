"""Scenario: checkpoint writers SIGKILLed mid-write, restarted on the same volume.

The first durability scenario, run with the writers as plain local processes (one per
ordinal, each on its own data directory) until the embedded cluster's kubelets can run
them as pods; the fault, the load, the probe and the checkers are the ones every cluster
scenario uses. Locust writes checkpoints to every ordinal; a seeded schedule SIGKILLs a
writer's process group mid-write and restarts it on the same directory; afterwards every
volume is read back with the offline verifier and the checkers judge the history.

Claims proven: every acknowledged checkpoint is present with its digest, nothing torn is
under a final name, nothing appears that was not attempted, and each ordinal serves its
newest acknowledged step again after each kill.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from harness import history, ops, probe, store, waiting
from harness.checkers import expect, registry
from harness.load import endpoints, local, runner, volumes
from harness.nemesis import base, process_kill

ORDINALS = 3
KEEP_LAST = 3
KILLS = 6
LOAD_SECONDS = 24.0
CHECKPOINT_BYTES = 256 * 1024
SHARDS = 4
USERS = 6


def _schedule(seed: int) -> list[dict[str, object]]:
    """The fault schedule, pure from the seed: (delay before the kill, target pod)."""
    rng = random.Random(seed)
    return [{"delay_s": round(rng.uniform(0.5, 2.5), 3), "target": f"ckpt-{rng.randrange(ORDINALS)}"}
            for _ in range(KILLS)]


def _acked_per_ordinal(run_dir: Path) -> dict[int, int]:
    counts = {n: 0 for n in range(ORDINALS)}
    for op in history.read_history(run_dir):
        if op.f == ops.WRITE and op.type == "ok" and isinstance(op.value, dict):
            ordinal = op.value.get("ordinal")
            if isinstance(ordinal, int):
                counts[ordinal] = counts.get(ordinal, 0) + 1
    return counts


def test_sigkilled_writers_keep_every_acknowledged_checkpoint(harness_seed: int, tmp_path: Path) -> None:
    schedule = _schedule(harness_seed)
    exp = expect.Expectations()
    settings = {"ordinals": ORDINALS, "keep_last": KEEP_LAST, "kills": KILLS, "load_seconds": LOAD_SECONDS,
                "checkpoint_bytes": CHECKPOINT_BYTES, "shards": SHARDS, "users": USERS}
    run = store.create_run("process-kill", seed=harness_seed, cluster_kind="local-processes",
                           settings=settings, expectations=exp.to_dict())
    # Rule 3: the schedule is in the run folder before it executes, so the run can be replayed.
    (run.path / "schedule.json").write_text(json.dumps(schedule, indent=1))
    endpoints_file = run.path / "endpoints.json"

    with local.LocalWriters(tmp_path / "volumes", ORDINALS, keep_last=KEEP_LAST) as writers:
        endpoints.write(endpoints_file, writers.urls())
        nemesis = process_kill.LocalProcessKill(writers, endpoints_file)
        spec = runner.LoadSpec(endpoints_file=endpoints_file, run_dir=run.path, users=USERS, spawn_rate=USERS,
                               duration_s=LOAD_SECONDS, size_bytes=CHECKPOINT_BYTES, shards=SHARDS,
                               request_timeout_s=10.0)
        pause = threading.Event()  # never set: waiting on it is the schedule's own delay
        with (
            run.history_writer("nemesis") as nemesis_rec,
            run.history_writer("probe") as probe_rec,
            probe.Probe(probe_rec, lambda: endpoints.read(endpoints_file).urls),
            runner.LoadRun(spec) as load,
        ):
            waiting.until(
                "every ordinal to acknowledge a checkpoint before the first fault",
                lambda: (min((c := _acked_per_ordinal(run.path)).values()) > 0, f"acks per ordinal {c}"),
                timeout=60,
                interval=0.2,
            )
            for step in schedule:
                pause.wait(float(str(step["delay_s"])))
                target = str(step["target"])
                ordinal = target.rsplit("-", 1)[1]
                with base.fault(nemesis_rec, nemesis, [target],
                                expected_unavailable={ordinal: "its writer process was SIGKILLed"}):
                    pass  # the period is kill → restarted and serving again (heal)
            result = load.wait()
    # Writers are stopped (SIGTERM, drained): only now are the volumes read back.
    run.write_facts(volumes.run_facts({w.ordinal: w.data_dir for w in writers.writers}, keep_last=KEEP_LAST))

    stored = store.open_run(run.path)
    composed = registry.compose(["durability", "availability", "perf"], stored.history(), stored.facts(), exp)
    run.write_results(composed.to_dict())
    run.finish()
    print(f"\nrun folder: {run.path}\nlocust: {result.requests} requests, {result.failures} failures\n"
          f"{composed.summary}")
    for name, v in composed.verdicts.items():
        print(f"  {name}: {v.summary}")

    durability = composed.verdicts["durability"]
    assert durability.valid is True, durability.summary
    assert composed.verdicts["availability"].valid is True, composed.verdicts["availability"].summary
    kills = [op for op in stored.history() if op.f == ops.FAULT_START and op.type == "ok"]
    assert len(kills) == KILLS, f"expected {KILLS} kills in the history, saw {len(kills)}"


@pytest.fixture(autouse=True)
def _announce(request: pytest.FixtureRequest) -> None:
    """Scenarios are long: say which one runs (pytest's -s shows it live)."""
    print(f"\nscenario {request.node.name}: local writer processes, {KILLS} seeded SIGKILLs during load")
