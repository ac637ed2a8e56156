"""One skip rule for tests that need the real process kubelet (``python -m kubesim.kubelet``)."""

from __future__ import annotations

import importlib.util

import pytest

REASON = "kubesim.kubelet has no __main__ yet (helper K5): a cluster with real kubelets cannot start"


def kubelet_available() -> bool:
    return importlib.util.find_spec("kubesim.kubelet.__main__") is not None


def require_kubelet() -> None:
    if not kubelet_available():
        print(f"\nSKIP: {REASON}")
        pytest.skip(REASON)
