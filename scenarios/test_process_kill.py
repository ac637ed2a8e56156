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

from collections.abc import Callable
from pathlib import Path

import pytest

from harness import scenario
from harness.checkers import expect
from harness.load import endpoints, local, runner, volumes
from harness.nemesis import process_kill

ORDINALS = 3
KEEP_LAST = 3
KILLS = 6
LOAD_SECONDS = 24.0
CHECKPOINT_BYTES = 256 * 1024
SHARDS = 4
USERS = 6


def test_sigkilled_writers_keep_every_acknowledged_checkpoint(
    harness_seed: int, tmp_path: Path, report_attach: Callable[[str, str], None]
) -> None:
    schedule = scenario.seeded_schedule(harness_seed, KILLS, [f"ckpt-{n}" for n in range(ORDINALS)])
    exp = expect.Expectations()
    settings = {"ordinals": ORDINALS, "keep_last": KEEP_LAST, "kills": KILLS, "load_seconds": LOAD_SECONDS,
                "checkpoint_bytes": CHECKPOINT_BYTES, "shards": SHARDS, "users": USERS}
    run = scenario.start_run("process-kill", seed=harness_seed, cluster_kind="local-processes",
                             settings=settings, expectations=exp, schedule=schedule)
    endpoints_file = run.path / "endpoints.json"

    with local.LocalWriters(tmp_path / "volumes", ORDINALS, keep_last=KEEP_LAST) as writers:
        endpoints.write(endpoints_file, writers.urls())
        plan = scenario.FaultPlan(
            nemesis=process_kill.LocalProcessKill(writers, endpoints_file),
            schedule=schedule,
            ordinal_of=lambda target: int(target.rsplit("-", 1)[1]),
            unavailable_because="its writer process was SIGKILLed",
        )
        spec = runner.LoadSpec(endpoints_file=endpoints_file, run_dir=run.path, users=USERS, spawn_rate=USERS,
                               duration_s=LOAD_SECONDS, size_bytes=CHECKPOINT_BYTES, shards=SHARDS,
                               request_timeout_s=10.0)
        result = scenario.run_faults_under_load(run, spec, lambda: endpoints.read(endpoints_file).urls, plan,
                                                ordinals=range(ORDINALS))
    # Writers are stopped (SIGTERM, drained): only now are the volumes read back.
    run.write_facts(volumes.run_facts({w.ordinal: w.data_dir for w in writers.writers}, keep_last=KEEP_LAST))

    composed = scenario.judge(run, ["durability", "availability", "perf"], exp, load=result, attach=report_attach)
    assert composed.verdicts["durability"].valid is True, composed.verdicts["durability"].summary
    assert composed.verdicts["availability"].valid is True, composed.verdicts["availability"].summary
    kills = scenario.fault_count(run.path)
    assert kills == KILLS, f"expected {KILLS} kills in the history, saw {kills}"


@pytest.fixture(autouse=True)
def _announce(request: pytest.FixtureRequest) -> None:
    """Scenarios are long: say which one runs (pytest's -s shows it live)."""
    print(f"\nscenario {request.node.name}: local writer processes, {KILLS} seeded SIGKILLs during load")
