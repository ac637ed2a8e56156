"""The writer's stop wait must wake for a signal whichever thread the kernel delivers it to."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a child: the wakeup fd and signal handlers are process-wide and main-thread only.
_CHILD = textwrap.dedent("""
    import signal, sys, threading, time
    from harness.workload import stopsignal

    MAIN = threading.get_native_id()

    def main_thread_blocked():
        with open(f"/proc/self/task/{MAIN}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "S"

    def signal_me_once_main_waits():
        # twice in a row, with the GIL released between looks: main is in the wait, not the GIL
        seen = 0
        while seen < 2:
            seen = seen + 1 if main_thread_blocked() else 0
            time.sleep(0.001)
        # the C handler runs on this thread; the main thread is never interrupted
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    with stopsignal.StopSignal() as stop:
        mode = sys.argv[1]
        if mode == "thread-signal":
            threading.Thread(target=signal_me_once_main_waits, daemon=True).start()
        elif mode == "request":
            threading.Thread(target=stop.request).start()
        elif mode == "two-signals":
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGTERM)
        got = stop.wait()
    print(got.name if got is not None else "request")
""")


def _run(mode: str) -> str:
    done = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_sigterm_delivered_to_a_worker_thread_wakes_the_main_thread() -> None:
    # With a handler that sets a threading.Event the main thread waits on, this child hangs.
    assert _run("thread-signal") == "SIGTERM"


def test_an_internal_stop_request_wakes_the_wait_without_a_signal() -> None:
    assert _run("request") == "request"


def test_the_first_of_several_signals_is_the_one_reported() -> None:
    assert _run("two-signals") == "SIGINT"
