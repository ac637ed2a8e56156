"""kubesim components stop on SIGTERM whichever of their threads the kernel hands it to.

Each case runs in a child process: the wakeup fd and signal handlers are process-wide and may
only be set from the main thread.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_CHILD = textwrap.dedent("""
    import signal, sys, threading, time
    from kubesim import stopsignal

    MAIN = threading.get_native_id()

    def main_thread_blocked() -> bool:
        with open(f"/proc/self/task/{MAIN}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"

    def signal_this_thread_once_main_waits() -> None:
        seen = 0
        while seen < 2:  # asleep at two looks in a row, GIL released between them: main is in the wait
            seen = seen + 1 if main_thread_blocked() else 0
            time.sleep(0.001)
        # thread-directed: the C handler runs on this thread and the main thread is not interrupted
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    with stopsignal.StopSignal() as stop:
        mode = sys.argv[1]
        if mode == "worker-thread-signal":
            threading.Thread(target=signal_this_thread_once_main_waits, daemon=True).start()
        elif mode == "set-from-a-thread":
            threading.Thread(target=stop.set).start()
        elif mode == "two-signals":
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
        elif mode == "timeout":
            print(stop.wait(0.05), end=" ")
            threading.Thread(target=stop.set).start()
        assert stop.wait()
        assert stop.event.is_set()
    print(stop.received.name if stop.received is not None else "requested")
""")


def _run(mode: str) -> str:
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=30,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child ({mode}) was still waiting 30 s after its stop: the signal never woke the main thread")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_sigterm_handled_on_a_worker_thread_wakes_the_main_thread() -> None:
    # with `signal.signal(SIGTERM, lambda *_: event.set())` + `event.wait()` this child never returns
    assert _run("worker-thread-signal") == "SIGTERM"


def test_a_stop_set_from_another_thread_wakes_the_wait_without_a_signal() -> None:
    assert _run("set-from-a-thread") == "requested"


def test_the_first_of_several_signals_is_the_one_reported() -> None:
    assert _run("two-signals") == "SIGINT"


def test_a_bounded_wait_says_it_timed_out() -> None:
    assert _run("timeout") == "False requested"
