"""A kubelet is recorded only once its pid runs the kubelet itself, not a launcher that will exec it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tenacity

from kubesim import nodes, state


def _launcher(state_dir: Path) -> subprocess.Popen[bytes]:
    """``sh`` playing nsenter: it names the state dir and execs the program only when told to."""
    program = [sys.executable, "-c", "import time; time.sleep(60)", "--state", str(state_dir)]
    proc = subprocess.Popen(["sh", "-c", 'read _ ; exec "$@"', "sh", *program], stdin=subprocess.PIPE)
    # the launcher's own argv shows once its exec is done (the window the fix is about)
    tenacity.Retrying(stop=tenacity.stop_before_delay(10), wait=tenacity.wait_fixed(0.01), reraise=True,
                      retry=tenacity.retry_if_result(lambda ours: not ours))(
        lambda: state.is_ours(state.Layout(state_dir), proc.pid))
    return proc


def test_a_launcher_that_execs_the_kubelet_later_is_waited_past(tmp_path: Path) -> None:
    """Regression: in a private network the pid first runs ``nsenter``, whose command line already
    names the state dir; recorded then, the kubelet's own exec (an empty command line for a moment)
    made the Ready wait report "the kubelet exited"."""
    layout = state.Layout(tmp_path)
    with _launcher(tmp_path) as stuck:
        with pytest.raises(RuntimeError, match="never showed its command line"):
            nodes._await_identifiable(layout, stuck, sys.executable, timeout=0.3)  # still the launcher
        assert stuck.returncode is not None, "a launch given up on is killed, never left running unrecorded"
    with _launcher(tmp_path) as proc:
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            nodes._await_identifiable(layout, proc, sys.executable)
            assert Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0] == sys.executable.encode()
        finally:
            proc.kill()
