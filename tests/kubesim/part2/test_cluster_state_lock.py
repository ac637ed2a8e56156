"""state.json is read-modify-written by separate `kubesim` processes (up, down, node crash/restore) that a
chaos run may start at the same time: no writer may lose another's change, or a kubelet runs that no
`crash` or `down` can find (it keeps heartbeating, so its node never goes Unknown)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubesim import nodes, state

NODES = [nodes.node_name(i) for i in range(8)]


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[state.Layout]:
    """An empty state directory whose "kubelets" are sleeping Pythons (their cmdline names the directory)."""
    monkeypatch.setenv("KUBESIM_KUBELET_CMD", f"{sys.executable} -c 'import time; time.sleep(60)'")
    out = state.Layout(tmp_path.resolve())
    state.write_state(out, {"components": {}})
    try:
        yield out
    finally:
        for info in state.read_state(out)["components"].values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.killpg(info.get("pid"), signal.SIGKILL)
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _children() -> list[int]:
    """Our own child processes (a lost record must not leak its sleeper past the test)."""
    me = os.getpid()
    try:
        text = Path(f"/proc/{me}/task/{me}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _at_once(jobs: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


def test_kubelets_started_at_once_are_all_recorded(layout: state.Layout) -> None:
    pids = _at_once([lambda n=n: nodes.start_kubelet(layout, n, dict(os.environ)) for n in NODES])
    recorded = {n: nodes.kubelet_pid(layout, n) for n in NODES}
    assert recorded == dict(zip(NODES, pids, strict=True)), "a concurrent writer dropped a kubelet's pid"


def test_two_restores_of_one_node_at_once_start_one_kubelet(layout: state.Layout) -> None:
    pids = _at_once([lambda: nodes.start_kubelet(layout, NODES[0], dict(os.environ)) for _ in range(4)])
    assert len(set(pids)) == 1, f"several kubelets for one node: {pids}"
    assert len(_children()) == 1


def test_a_crash_during_restores_of_other_nodes_keeps_their_records(layout: state.Layout) -> None:
    victim = nodes.start_kubelet(layout, NODES[0], dict(os.environ))
    jobs: list[Callable[[], object]] = [lambda: nodes.crash(layout, NODES[0])]
    jobs += [lambda n=n: nodes.start_kubelet(layout, n, dict(os.environ)) for n in NODES[1:]]
    results = _at_once(jobs)
    assert results[0] == (victim, 0)
    assert nodes.kubelet_pid(layout, NODES[0]) is None
    assert state.read_state(layout)["components"][nodes.PREFIX + NODES[0]].get("crashed") is True
    assert {n: nodes.kubelet_pid(layout, n) for n in NODES[1:]} == dict(zip(NODES[1:], results[1:], strict=True))


def test_a_just_started_kubelet_is_identifiable_at_once(layout: state.Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    """Popen returns when exec closes the close-on-exec pipe, before the kernel maps the new argv: for
    a moment /proc/<pid>/cmdline is empty (measured: 32 of 200 Popen calls here, read at once).

    start_kubelet must not return inside that window, or `restore` reports "the kubelet exited" and a
    `crash` right after finds "kubelet (was not running)" and kills nothing. On an idle machine the
    state-file write after Popen usually outlasts the window; on a loaded one it need not, so the
    window is stood in for here: the first looks at a new pid see no command line.
    """
    real = state.is_ours
    looks: dict[int, int] = {}

    def exec_window(layout_: state.Layout, pid: int) -> bool:
        looks[pid] = looks.get(pid, 0) + 1
        return looks[pid] > 3 and real(layout_, pid)

    monkeypatch.setattr(state, "is_ours", exec_window)
    pid = nodes.start_kubelet(layout, NODES[0], dict(os.environ))
    assert nodes.kubelet_pid(layout, NODES[0]) == pid, "the kubelet just started is not recognised as ours"
    assert nodes.crash(layout, NODES[0])[0] == pid, "crash right after a restore killed nothing"
