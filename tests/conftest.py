"""Shared fixtures for the project's own tests: a real kubesim API server, reached over HTTPS.

``kubesim_kubeconfig`` starts ``python -m kubesim up --state <tmp> --port 0`` as a subprocess
once per session (tests talk to it only through HTTP, like any client), and runs ``down`` at
teardown even when tests fail. Other helpers' tests rely on its name and behaviour.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis's per-example deadline (200 ms) and its "input generation is slow" check time the
# machine, not the property: under a CPU hog or four busy workers they fail tests whose claims
# hold. Properties are judged by their assertions only.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

# Clusters the suite starts run kubesim's fast timing (readiness retried every 0.1 s until it first
# passes, instant image pulls): these tests judge behaviour, not recovery times, and the wait for
# real probe periods was a third of the suite's time. Tests whose claim is a period or a pull pass
# ``--timing upstream`` (or their own flags) explicitly; `make run` and scenarios/ keep upstream.
os.environ.setdefault("KUBESIM_TIMING", "fast")
os.environ.setdefault("HARNESS_KUBESIM_TIMING", "fast")


def start_kubesim(state_dir: Path, *extra: str) -> Path:
    """Run ``kubesim up`` for ``state_dir`` and return its kubeconfig; raises with the CLI's output on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "kubesim", "up", "--state", str(state_dir), "--port", "0", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubesim up failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return state_dir / "kubeconfig"


def stop_kubesim(state_dir: Path) -> None:
    subprocess.run([sys.executable, "-m", "kubesim", "down", "--state", str(state_dir)],
                   capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def kubesim_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Path of a kubeconfig for a kubesim API server that lives for the whole test session.

    Watch bookmarks come every second (instead of every minute) so bookmark tests stay short.
    """
    state_dir = tmp_path_factory.mktemp("kubesim-state")
    try:
        yield start_kubesim(state_dir, "--bookmark-interval", "1")
    finally:
        stop_kubesim(state_dir)


@pytest.fixture(scope="module")
def kubesim_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Path]]:
    """Start extra kubesim servers with their own flags (``factory("--watch-window", "5")``); all stopped after."""
    started: list[Path] = []

    def factory(*extra: str) -> Path:
        state_dir = tmp_path_factory.mktemp("kubesim-extra")
        started.append(state_dir)
        return start_kubesim(state_dir, *extra)

    try:
        yield factory
    finally:
        for state_dir in started:
            stop_kubesim(state_dir)


@pytest.fixture
def kubesim_api(kubesim_kubeconfig: Path) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` for the session's kubesim (closed after the test)."""
    from kubernetes import config

    client = config.new_client_from_config(config_file=str(kubesim_kubeconfig))
    try:
        yield client
    finally:
        client.close()
