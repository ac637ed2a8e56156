"""Locust load against real writer processes: every request recorded, faults judged right.

Writers are ``harness writer serve`` processes (one per ordinal, own data dir, port 0),
locust runs in its own processes through harness.load.runner, and the durability checker
judges the history against what ``harness verify`` reads back from the volumes.
"""

from __future__ import annotations

import collections
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from harness import checkers, facts, history, ops
from harness.load import endpoints, local, runner, stages, volumes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[local.LocalWriters]:
    group = local.LocalWriters(tmp_path / "writers", 2, keep_last=0)
    try:
        yield group.start()
    finally:
        group.stop()


def spec_for(tmp_path: Path, ws: local.LocalWriters, **overrides: object) -> runner.LoadSpec:
    endpoints_file = tmp_path / "endpoints.json"
    endpoints.write(endpoints_file, ws.urls())
    settings: dict[str, object] = {
        "endpoints_file": endpoints_file, "run_dir": tmp_path / "run", "users": 4, "spawn_rate": 50.0,
        "duration_s": 3.0, "size_bytes": 16 << 10, "shards": 2, "request_timeout_s": 10.0,
    }
    settings.update(overrides)
    return runner.LoadSpec(**settings)  # type: ignore[arg-type]


def write_pairs(run_dir: Path) -> list[history.Pair]:
    return history.pair(op for op in history.read_history(run_dir) if op.f == ops.WRITE)


def durability(run_dir: Path, ws: local.LocalWriters) -> checkers.Verdict:
    read_back = volumes.run_facts({w.ordinal: w.data_dir for w in ws.writers}, keep_last=0)
    return checkers.check_durability(history.read_history(run_dir), read_back, checkers.Expectations())


def test_every_request_is_recorded_once_and_the_history_passes_durability(
    tmp_path: Path, writers: local.LocalWriters
) -> None:
    spec = spec_for(tmp_path, writers)
    result = runner.run(spec)
    assert result.exit_code == 0
    pairs = write_pairs(spec.run_dir)
    assert result.requests > 0
    assert result.requests == len(pairs), "locust's request count must equal the number of write invokes"
    assert all(p.completion is not None for p in pairs), "a request left without a completion"
    outcomes = collections.Counter(p.outcome for p in pairs)
    assert outcomes == {"ok": len(pairs)}, f"no fault was injected, yet: {outcomes}"
    per_ordinal = collections.Counter(p.invoke.value["ordinal"] for p in pairs)  # type: ignore[index,call-overload]
    assert set(per_ordinal) == {0, 1}, "every ordinal gets load"
    for p in pairs:
        assert p.completion is not None
        assert p.completion.value["request_id"] == p.invoke.value["request_id"]  # type: ignore[index,call-overload]
    assert result.metrics.requests == result.requests
    assert (spec.load_dir / "locust.html").exists()
    assert (spec.load_dir / "locust_stats.csv").exists()
    verdict = durability(spec.run_dir, writers)
    assert verdict.valid is True, verdict.summary


def test_sigkilled_writer_turns_in_flight_requests_info_and_load_follows_its_restart(
    tmp_path: Path, writers: local.LocalWriters
) -> None:
    # Big enough that a request is almost always in flight when the writer dies.
    spec = spec_for(tmp_path, writers, duration_s=8.0, size_bytes=2 << 20, shards=4)
    victim = writers.writers[1]
    old_port = victim.port

    def ok_count(ordinal: int, after: float = 0.0) -> int:
        files = history.history_files(spec.run_dir) if spec.history_dir.is_dir() else []
        return sum(
            1 for p in (history.pair(history.read_history(files)) if files else [])
            if p.outcome == "ok" and p.invoke.value["ordinal"] == ordinal  # type: ignore[index,call-overload]
            and p.completion is not None and p.completion.time > after
        )

    def await_ok(ordinal: int, after: float, what: str) -> None:
        seen = [0]

        def check() -> bool:
            seen[0] = ok_count(ordinal, after)
            return seen[0] >= 2

        def give_up(state: tenacity.RetryCallState) -> None:
            raise AssertionError(f"waited 10s for {what}; saw {seen[0]} ok writes")

        tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: not done), wait=tenacity.wait_fixed(0.05),
            stop=tenacity.stop_before_delay(10), retry_error_callback=give_up,
        )(check)

    with runner.LoadRun(spec) as load:
        await_ok(1, 0.0, "acknowledged writes on ordinal 1 before the kill")
        killed_at = time.time()
        victim.kill(signal.SIGKILL)
        victim.start()
        assert victim.port != old_port
        endpoints.write(spec.endpoints_file, writers.urls())
        restarted_at = time.time()
        await_ok(1, restarted_at, "acknowledged writes on ordinal 1 after the restart on a new port")
        result = load.wait()

    assert result.exit_code == 0
    pairs = write_pairs(spec.run_dir)
    assert result.requests == len(pairs)
    on_victim = [p for p in pairs if p.invoke.value["ordinal"] == 1]  # type: ignore[index,call-overload]
    in_flight = [
        p for p in on_victim
        if p.invoke.time < killed_at and (p.completion is None or p.completion.time > killed_at)
    ]
    # A receipt sent just before the kill may be recorded just after it: that ok is legitimate
    # only if the writer published before it died.
    assert all(
        p.outcome == "info" or (p.outcome == "ok" and p.completion.value["durable_at"] <= killed_at)  # type: ignore[union-attr,index,call-overload]
        for p in in_flight
    ), [p.completion for p in in_flight]
    assert any(p.outcome == "info" for p in in_flight), "no request was in flight on the killed writer"
    # Every acknowledgement published after the kill came from the restarted process on its new port.
    old_epochs = {
        p.completion.value["epoch"]  # type: ignore[union-attr,index,call-overload]
        for p in on_victim if p.outcome == "ok" and p.completion.value["durable_at"] < killed_at  # type: ignore[union-attr,index,call-overload]
    }
    late_oks = [
        p for p in on_victim
        if p.outcome == "ok" and p.completion.value["durable_at"] > killed_at  # type: ignore[union-attr,index,call-overload]
    ]
    assert late_oks
    assert all(p.completion.value["epoch"] not in old_epochs for p in late_oks)  # type: ignore[union-attr,index,call-overload]
    assert all(p.invoke.value["url"] == victim.url for p in late_oks)  # type: ignore[index,call-overload]
    verdict = durability(spec.run_dir, writers)
    assert verdict.valid is True, verdict.summary


def test_distributed_master_and_two_workers_make_one_merged_history(
    tmp_path: Path, writers: local.LocalWriters
) -> None:
    spec = spec_for(tmp_path, writers, workers=2)
    result = runner.run(spec)
    assert result.exit_code == 0
    files = history.history_files(spec.run_dir)
    assert len(files) == 2, f"one history file per worker process, got {[f.name for f in files]}"
    merged = history.read_history(spec.run_dir)
    assert [op.index for op in merged] == list(range(len(merged)))
    processes_by_file = [{op.process for op in history.read_history(f)} for f in files]
    assert processes_by_file[0].isdisjoint(processes_by_file[1]), "Jepsen process names must be unique"
    pairs = history.pair(op for op in merged if op.f == ops.WRITE)
    assert result.requests == len(pairs) > 0
    assert result.metrics.requests == result.requests, "every worker wrote its metrics at quit"
    assert all(p.outcome == "ok" for p in pairs)
    for f in files:
        ordinals = {op.value["ordinal"] for op in history.read_history(f)}  # type: ignore[index,call-overload]
        assert ordinals == {0, 1}, f"every worker loads every ordinal: {f.name} wrote {ordinals}"
    assert durability(spec.run_dir, writers).valid is True


def test_run_facts_read_every_volume(tmp_path: Path, writers: local.LocalWriters) -> None:
    """The facts the other tests judge by really come from the volumes (not an empty list)."""
    result = runner.run(spec_for(tmp_path, writers, duration_s=1.0))
    assert result.metrics.ok > 0
    read_back = volumes.run_facts({w.ordinal: w.data_dir for w in writers.writers})
    assert [v.ordinal for v in read_back.volumes] == [0, 1]
    assert sum(len(v.checkpoints) for v in read_back.volumes) == result.metrics.ok
    assert all(isinstance(c, facts.CheckpointFact) and c.valid for v in read_back.volumes for c in v.checkpoints)


def test_endpoint_that_never_answers_gives_info_on_every_request_within_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as silent:  # the kernel completes connections; nobody ever reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        endpoints_file = tmp_path / "endpoints.json"
        endpoints.write(endpoints_file, {0: f"http://127.0.0.1:{silent.getsockname()[1]}"})
        spec = runner.LoadSpec(
            endpoints_file=endpoints_file, run_dir=tmp_path / "run", users=2, spawn_rate=50.0, duration_s=1.0,
            size_bytes=1024, request_timeout_s=1.5,
        )
        started = time.monotonic()
        result = runner.run(spec)
        elapsed = time.monotonic() - started
    assert elapsed < spec.deadline_s
    pairs = write_pairs(spec.run_dir)
    assert len(pairs) == result.requests >= 2
    assert all(p.completion is not None for p in pairs), "every request gets a completion, even a stuck one"
    assert {p.outcome for p in pairs} == {"info"}
    assert all("RequestDeadline" in (p.completion.error or "") for p in pairs)  # type: ignore[union-attr]


def test_a_refused_connection_is_fail_because_nothing_was_sent(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port that was free a moment ago: connecting is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    endpoints_file = tmp_path / "endpoints.json"
    endpoints.write(endpoints_file, {0: f"http://127.0.0.1:{port}"})
    spec = runner.LoadSpec(endpoints_file=endpoints_file, run_dir=tmp_path / "run", users=1, spawn_rate=50.0,
                           duration_s=1.0, size_bytes=1024, request_timeout_s=5.0)
    runner.run(spec)
    pairs = write_pairs(spec.run_dir)
    assert pairs, "the load made no request"
    assert {p.outcome for p in pairs} == {"fail"}, [p.completion for p in pairs]
    assert all((p.completion.error or "").startswith("not sent: ConnectionRefusedError")  # type: ignore[union-attr]
               for p in pairs)


def test_load_stopped_mid_request_records_info_for_the_request_in_flight(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        endpoints_file = tmp_path / "endpoints.json"
        endpoints.write(endpoints_file, {0: f"http://127.0.0.1:{silent.getsockname()[1]}"})
        spec = runner.LoadSpec(
            endpoints_file=endpoints_file, run_dir=tmp_path / "run", users=1, spawn_rate=50.0, duration_s=60.0,
            size_bytes=1024, request_timeout_s=60.0,
        )
        with runner.LoadRun(spec) as load:
            seen = [0]

            def invoked() -> bool:
                files = history.history_files(spec.run_dir) if spec.history_dir.is_dir() else []
                seen[0] = sum(op.type == "invoke" for op in history.read_history(files)) if files else 0
                return seen[0] >= 1

            tenacity.Retrying(
                retry=tenacity.retry_if_result(lambda done: not done), wait=tenacity.wait_fixed(0.05),
                stop=tenacity.stop_before_delay(15), reraise=True,
                retry_error_callback=lambda _: pytest.fail(f"no invoke recorded within 15s (saw {seen[0]})"),
            )(invoked)
            load.stop()
    pairs = write_pairs(spec.run_dir)
    assert len(pairs) == 1
    assert pairs[0].completion is not None
    assert pairs[0].outcome == "info"
    assert "load stopped" in (pairs[0].completion.error or "")


def test_rate_per_ordinal_paces_each_ordinal(tmp_path: Path, writers: local.LocalWriters) -> None:
    rate, duration = 4.0, 3.0
    spec = spec_for(tmp_path, writers, users=3, duration_s=duration, rate_per_ordinal=rate, size_bytes=4096)
    runner.run(spec)
    per_ordinal = collections.Counter(
        p.invoke.value["ordinal"] for p in write_pairs(spec.run_dir)  # type: ignore[index,call-overload]
    )
    # constant_throughput never runs ahead of the pace (one request per user may start at t=0);
    # unpaced, these small writes would be hundreds per ordinal. The pace is a ceiling, not a
    # promise: a loaded machine may fall behind it (seen: 5 of 12 under a CPU hog), so the floor
    # only says each ordinal got load at all.
    ceiling = rate * duration + spec.users
    for ordinal in (0, 1):
        assert 1 <= per_ordinal[ordinal] <= ceiling, per_ordinal


def test_ordinal_added_to_the_endpoints_file_mid_run_gets_load(tmp_path: Path, writers: local.LocalWriters) -> None:
    spec = spec_for(tmp_path, writers, duration_s=5.0, users=2)
    endpoints.write(spec.endpoints_file, {0: writers.writers[0].url})  # ordinal 1 not reachable yet

    def oks_on(ordinal: int) -> int:
        files = history.history_files(spec.run_dir) if spec.history_dir.is_dir() else []
        return sum(
            1 for p in (history.pair(history.read_history(files)) if files else [])
            if p.outcome == "ok" and p.invoke.value["ordinal"] == ordinal  # type: ignore[index,call-overload]
        )

    def await_oks(ordinal: int) -> None:
        seen = [0]

        def check() -> bool:
            seen[0] = oks_on(ordinal)
            return seen[0] >= 2

        def give_up(state: tenacity.RetryCallState) -> None:
            raise AssertionError(f"waited 10s for acknowledged writes on ordinal {ordinal}; saw {seen[0]}")

        tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda done: not done), wait=tenacity.wait_fixed(0.05),
            stop=tenacity.stop_before_delay(10), retry_error_callback=give_up,
        )(check)

    with runner.LoadRun(spec) as load:
        await_oks(0)
        assert oks_on(1) == 0
        endpoints.write(spec.endpoints_file, writers.urls())
        await_oks(1)
        result = load.wait()
    assert result.requests == len(write_pairs(spec.run_dir))
    assert durability(spec.run_dir, writers).valid is True


def test_stages_shape_steps_the_user_count(tmp_path: Path, writers: local.LocalWriters) -> None:
    spec = spec_for(tmp_path, writers, stages=stages.parse("2s:1@10,2s:3@10"), size_bytes=4096)
    result = runner.run(spec)
    assert result.exit_code == 0
    pairs = write_pairs(spec.run_dir)
    assert result.requests == len(pairs)
    first_invoke: dict[str, float] = {}
    for p in pairs:
        first_invoke.setdefault(p.invoke.process, p.invoke.time)
    assert len(first_invoke) == 3, f"three users in the last stage, got {sorted(first_invoke)}"
    start = min(first_invoke.values())
    late = sorted(t - start for t in first_invoke.values())[1:]
    assert all(t >= 1.5 for t in late), f"users 2 and 3 must start with the second stage, started at {late}"
    ordinals_late = {p.invoke.value["ordinal"] for p in pairs if p.invoke.time - start > 3.0}  # type: ignore[index,call-overload]
    assert ordinals_late == {0, 1}
