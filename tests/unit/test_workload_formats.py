"""Library checkpoint formats in-process (docs/formats.md): the tensor plan, the manifest with
tensors, the format setting, and that every library's reader catches what its checkpoint lost.

Formats whose library is not installed are skipped with one line saying what to install.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from harness.workload import config, events, formats, fsutil, layout, manifest, recovery, store, tensors, validate
from harness.workload import verify as verify_mod

LIBRARY_FORMATS = [f for f in config.CHECKPOINT_FORMATS if f != "raw"]


def installed(fmt: str) -> object:
    problem = config.missing_library(fmt)  # type: ignore[arg-type]
    return pytest.param(fmt, id=fmt, marks=pytest.mark.skipif(problem is not None, reason=problem or ""))


# ---- the plan -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("nbytes", "shards"), [(4, 1), (7, 1), (8, 2), (255, 1), (256, 1), (1000, 3),
                                                (1 << 20, 7), (10**9 + 3, 1024)])
def test_the_plan_holds_exactly_the_bytes_asked_for_in_real_tensors(nbytes: int, shards: int) -> None:
    layers = tensors.plan(nbytes, shards)
    assert len(layers) == shards
    assert sum(layer.nbytes for layer in layers) == nbytes
    for layer in layers:
        names = [t.name for t in layer.tensors]
        assert names[0] == f"layers.{layer.index:05d}.weight"
        assert layer.tensors[0].dtype == "float32"
        assert all(t.nbytes > 0 for t in layer.tensors)
        assert len(set(names)) == len(names)


@pytest.mark.parametrize(("nbytes", "shards"), [(1, 1), (3, 1), (7, 2), (4095, 1024)])
def test_a_request_with_less_than_one_float32_per_shard_cannot_be_expressed(nbytes: int, shards: int) -> None:
    with pytest.raises(tensors.PlanError, match=r"at least one float32 element") as err:
        tensors.plan(nbytes, shards)
    assert "\n" not in str(err.value)


def test_tensor_contents_are_seeded_finite_and_differ_by_step() -> None:
    import numpy as np

    layer = tensors.plan(40_000, 1)[0]
    a = tensors.layer_bytes(layer, "vol", "ep", 1)
    assert a == tensors.layer_bytes(layer, "vol", "ep", 1)
    assert a != tensors.layer_bytes(layer, "vol", "ep", 2)
    for t, buf in zip(layer.tensors, a, strict=True):
        values = np.frombuffer(buf, dtype=t.dtype)
        if t.dtype != "uint8":
            assert np.isfinite(values).all()
            assert (np.abs(values) >= 0.5).all()
            assert (np.abs(values) <= 2).all()


# ---- the manifest ---------------------------------------------------------------------------------
def _library_manifest() -> manifest.Manifest:
    stamp = formats.Stamp(3, 1, "ep", "vol", 1.5, "req")
    layers = tensors.plan(1000, 2)
    return formats.manifest_for("torch-dcp", stamp, layers, [["d"] * len(layer.tensors) for layer in layers])


def test_a_library_manifest_round_trips_and_counts_tensor_bytes() -> None:
    m = _library_manifest()
    back = manifest.decode(m.encode())
    assert back == m
    assert back.total_bytes == 1000
    assert back.digest() == m.digest()


def test_a_raw_manifest_is_byte_for_byte_what_it_was() -> None:
    m = manifest.Manifest(1, 0, "e", "v", 1.0, None, (manifest.FileEntry("shard-00000.bin", 3, "d"),))
    assert "checkpoint_format" not in m.body()
    assert "tensors" not in m.body()


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("checkpoint_format", "pickle", "bad checkpoint_format"),
    ("tensors", [], "lists no tensors"),
    ("tensors", [{"name": "a", "dtype": "int128", "shape": [1], "digest": "d"}], "unsupported dtype"),
    ("tensors", [{"name": "a", "dtype": "uint8", "shape": [0], "digest": "d"}], "bad shape"),
    ("tensors", [{"name": "a", "dtype": "uint8", "shape": [1], "digest": "d", "file": "../x"}], "bad digest or file"),
])
def test_a_malformed_library_manifest_is_refused(field: str, value: object, problem: str) -> None:
    from harness.workload.manifest import body_digest

    body = _library_manifest().body()
    body[field] = value
    with pytest.raises(manifest.ManifestError, match=problem):
        manifest.decode(json.dumps({**body, "digest": body_digest(body)}).encode())


# ---- the setting ----------------------------------------------------------------------------------
def test_an_unknown_format_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(config.ConfigError, match=r"unknown checkpoint format 'pickle'; known: raw, safetensors"):
        config.writer_config({"WRITER_FORMAT": "pickle"}, Path("/data"))


def test_the_flag_beats_the_environment_and_raw_is_the_default() -> None:
    assert config.writer_config({}, Path("/d")).format == "raw"
    cfg = config.writer_config({"WRITER_FORMAT": "nonsense"}, Path("/d"), checkpoint_format="raw")
    assert cfg.format == "raw"


def test_a_missing_library_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(config.ConfigError) as err:
        config.writer_config({"WRITER_FORMAT": "torch-dcp-hardened"}, Path("/d"))
    assert "needs the Python module 'torch'" in str(err.value)
    assert "ckpt-chaos-harness[torch]" in str(err.value)


def test_unsafe_skip_is_for_the_raw_format_only() -> None:
    with pytest.raises(config.ConfigError, match="raw format only"):
        config.writer_config({"WRITER_FORMAT": "safetensors", "WRITER_UNSAFE_SKIP": "file-fsync"}, Path("/d"))


def test_orbax_temp_directories_are_temp_names() -> None:
    assert layout.is_temp_name("step-000000000007.orbax-checkpoint-tmp")
    assert layout.parse_final_name("step-000000000007.orbax-checkpoint-tmp") is None


# ---- each library's reader catches what its checkpoint lost --------------------------------------
def _store(ckdir: Path, fmt: str) -> store.CheckpointStore:
    ckdir.mkdir(parents=True, exist_ok=True)
    return store.CheckpointStore(ckdir, ordinal=0, volume_id="vol", epoch="ep",
                                 recovered=recovery.RecoveryReport((), 0, 0, 0.0), keep_last=0,
                                 log=events.NullLog(), checkpoint_format=fmt)  # type: ignore[arg-type]


def _published(tmp_path: Path, fmt: str) -> tuple[Path, store.Published]:
    s = _store(tmp_path / "checkpoints", fmt)
    try:
        done = s.publish(None, 300_000, 3, "req")
    finally:
        s.close()
    return tmp_path / "checkpoints" / layout.final_name(done.step), done


def _files(path: Path) -> list[Path]:
    return sorted(Path(here) / name for here, _dirs, names in os.walk(path) for name in names)


@pytest.mark.parametrize("fmt", [installed(f) for f in LIBRARY_FORMATS])
def test_a_published_checkpoint_verifies_by_its_library_with_the_acknowledged_digest(tmp_path: Path,
                                                                                     fmt: str) -> None:
    path, done = _published(tmp_path, fmt)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [path.name]
    for depth in ("full", "structure"):
        check = validate.check_checkpoint(path, done.step, 0, depth)  # type: ignore[arg-type]
        assert check.valid, check.problem
        assert check.manifest is not None
        assert check.manifest.digest() == done.digest
        assert check.manifest.checkpoint_format == fmt
    assert validate.check_checkpoint(path, done.step, 1).problem == "written by ordinal 0, volume belongs to ordinal 1"


def _flip_middle_byte(path: Path) -> None:
    """A byte inside the tensor data (a container's trailer may be bytes no reader needs)."""
    middle = path.stat().st_size // 2
    with open(path, "r+b") as f:
        f.seek(middle)
        byte = f.read(1)
        f.seek(middle)
        f.write(bytes([byte[0] ^ 0x01]))


def _largest(path: Path) -> Path:
    return max(_files(path), key=lambda p: p.stat().st_size)


DAMAGE = {
    "truncate the largest file": lambda p: os.truncate(_largest(p), _largest(p).stat().st_size // 2),
    "flip a byte of the largest file": lambda p: _flip_middle_byte(_largest(p)),
    "empty every file": lambda p: [os.truncate(f, 0) for f in _files(p)],
    "remove the largest file": lambda p: _largest(p).unlink(),
}


#: after a failed restore, tensorstore's read callbacks fire into the event loop Orbax already
#: closed ("Exception ignored ... Event loop is closed" in a tensorstore thread): the library's
#: noise after the answer, not a failure of the test
ORBAX_LOOP_NOISE = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@ORBAX_LOOP_NOISE
@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("fmt", [installed(f) for f in LIBRARY_FORMATS if not f.endswith("-hardened")])
def test_a_damaged_checkpoint_is_torn_to_its_library(tmp_path: Path, fmt: str, damage: str) -> None:
    path, done = _published(tmp_path, fmt)
    DAMAGE[damage](path)
    check = validate.check_checkpoint(path, done.step, 0, "full")
    assert not check.valid, f"{damage}: still valid"
    assert check.problem
    found, _ = verify_mod.verify_volume(tmp_path, ordinal=0)
    assert [(c.step, c.valid) for c in found.checkpoints] == [(done.step, False)]


@pytest.mark.parametrize("fmt", [installed("torch-dcp")])
def test_a_dcp_directory_without_its_metadata_is_torn(tmp_path: Path, fmt: str) -> None:
    path, done = _published(tmp_path, fmt)
    (path / ".metadata").unlink()
    check = validate.check_checkpoint(path, done.step, 0, "structure")
    assert not check.valid
    assert "no .metadata" in (check.problem or "")


def test_an_empty_step_directory_is_torn(tmp_path: Path) -> None:
    (tmp_path / "step-000000000001").mkdir()
    check = validate.check_checkpoint(tmp_path / "step-000000000001", 1, 0)
    assert (check.valid, check.problem) == (False, "empty directory: nothing of the checkpoint is there")


@pytest.mark.parametrize("fmt", [installed(f) for f in LIBRARY_FORMATS])
def test_boot_recovery_judges_each_checkpoint_by_its_own_library(tmp_path: Path, fmt: str) -> None:
    """A raw writer (or any other format) restarted on a volume judges what is there by content."""
    _path, done = _published(tmp_path, fmt)
    ckdir = tmp_path / "checkpoints"
    raw = store.CheckpointStore(ckdir, ordinal=0, volume_id="vol", epoch="ep2",
                                recovered=recovery.recover(ckdir, 0, fsutil.Disk(), events.NullLog()), keep_last=0,
                                log=events.NullLog())
    try:
        raw.publish(None, 100, 1)
    finally:
        raw.close()
    report = recovery.recover(ckdir, 0, fsutil.Disk(), events.NullLog())
    assert len(report.entries) == 2
    assert next((e.step, e.valid, e.digest == done.digest) for e in report.entries) == (done.step, True, True)
    assert all(e.valid for e in report.entries)
