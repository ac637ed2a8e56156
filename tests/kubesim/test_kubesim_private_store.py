"""A private store: what was deleted leaves kubesim.db once the history is compacted (A4, A11).

A real kubesim process with a one-second compaction interval (``KUBESIM_COMPACTION_INTERVAL``,
upstream's ``--etcd-compaction-interval`` is 5 minutes); the test talks HTTP only and then
searches the state directory's SQLite files byte by byte.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def _files_with(state: Path, needles: list[bytes]) -> list[str]:
    return sorted(p.name for p in state.iterdir()
                  if p.name.startswith("kubesim.db") and any(n in p.read_bytes() for n in needles))


def test_a_deleted_secrets_data_is_not_in_kubesim_db_after_compaction(
        kubesim_factory: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A11: the Secret is watchable history until compacted, then gone from the db and its WAL; old RVs get 410."""
    monkeypatch.setenv("KUBESIM_COMPACTION_INTERVAL", "1")
    kubeconfig = kubesim_factory()
    state = kubeconfig.parent
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    marker = secrets.token_hex(24)
    encoded = base64.b64encode(marker.encode()).decode()
    needles = [marker.encode(), encoded.encode()]
    try:
        created = core.create_namespaced_secret("default", {"metadata": {"name": "private"}, "data": {"key": encoded}})
        core.delete_namespaced_secret("private", "default")
        assert _files_with(state, needles), "the deleted Secret should still be in the history right after deletion"

        deadline = time.monotonic() + 60  # measured up to 18 s on a loaded 2-core machine
        while still_there := _files_with(state, needles):
            if time.monotonic() >= deadline:
                pytest.fail("waited 60 s for the compaction clock (KUBESIM_COMPACTION_INTERVAL=1) to scrub the "
                            f"deleted Secret's data from the state directory; still in: {', '.join(still_there)}")
            time.sleep(0.25)

        with pytest.raises(ApiException) as err:
            for _event in watch.Watch().stream(core.list_namespaced_secret, "default", timeout_seconds=2,
                                               resource_version=created.metadata.resource_version):
                pass
        assert err.value.status == 410
        assert "too old resource version" in str(err.value.reason)
        assert [s.metadata.name for s in core.list_namespaced_secret("default").items] == []
    finally:
        api.close()
