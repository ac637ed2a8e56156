"""Per-node image store and pull queue (kubesim/images.py NodeImages): pulls cost time, once per node."""

from __future__ import annotations

from pathlib import Path

from kubesim import images


def test_pause_is_preloaded_and_other_images_must_be_pulled(tmp_path: Path) -> None:
    store = images.NodeImages(tmp_path / "images.json")
    assert store.present("registry.k8s.io/pause:3.10")
    assert not store.present("ckpt-writer:test")
    store.pulled("ckpt-writer:test")
    assert store.present("docker.io/library/ckpt-writer:test"), "references are compared normalised"


def test_pulls_on_one_node_are_serialised_and_a_pull_in_flight_is_joined(tmp_path: Path) -> None:
    store = images.NodeImages(None)
    first = store.schedule("busybox", now=100.0, duration=1.0)
    joined = store.schedule("busybox:latest", now=100.5, duration=1.0)
    other = store.schedule("ckpt-writer:x", now=100.5, duration=1.0)
    assert (first, joined, other) == (101.0, 101.0, 102.0)
    assert store.schedule("busybox", now=103.0, duration=1.0) == 104.0, "a finished pull is not joined"


def test_pulled_images_survive_a_kubelet_restart(tmp_path: Path) -> None:
    path = tmp_path / "images.json"
    images.NodeImages(path).pulled("busybox")
    assert images.NodeImages(path).present("busybox")
    path.write_text("not json")
    assert not images.NodeImages(path).present("busybox"), "an unreadable record means nothing was pulled"
