"""The writer's settings: who this pod is (from the downward API) and how it writes.

Precedence is CLI flag > environment > default; the pod spec sets the environment, a
developer or a test the flags.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, get_args

GIB: Final = 1024**3
DEFAULT_MAX_BYTES: Final = 4 * GIB
DEFAULT_KEEP_LAST: Final = 3
DEFAULT_PORT: Final = 8080
DEFAULT_HOST: Final = "0.0.0.0"
MAX_SHARDS: Final = 1024
#: seconds a connection may sit idle between requests, and may take to send one request (head
#: and body), before the writer closes it; the load reconnects after 5 s idle, far inside it
DEFAULT_CONNECTION_TIMEOUT: Final = 30.0
CONNECTION_TIMEOUT_ENV: Final = "WRITER_CONNECTION_TIMEOUT"
#: open connections served at once (one thread each); more are answered 503 and closed
DEFAULT_MAX_CONNECTIONS: Final = 256
MAX_CONNECTIONS_ENV: Final = "WRITER_MAX_CONNECTIONS"

#: Publish-protocol steps a NEGATIVE CONTROL may skip (tests only; see docs/durability.md):
#:   file-fsync     no fsync of shards and manifest      -> empty/short files after power loss
#:   flush          last chunk written after the fsync   -> lost tail after power loss
#:   tmpdir-fsync   no fsync of the temp dir             -> published dir missing entries
#:   parent-fsync   no fsync of the parent after rename  -> acknowledged checkpoint undone
#:   atomic-rename  write in place under the final name  -> torn checkpoint visible after any crash
ProtocolStep = Literal["file-fsync", "flush", "tmpdir-fsync", "parent-fsync", "atomic-rename"]
PROTOCOL_STEPS: Final[tuple[ProtocolStep, ...]] = get_args(ProtocolStep)
UNSAFE_SKIP_ENV: Final = "WRITER_UNSAFE_SKIP"

#: How a checkpoint is written (docs/formats.md). ``raw`` is the writer's own publish protocol;
#: the others write seeded tensors through a checkpoint library. The plain name publishes
#: exactly as the library does by default (into the final name, with only the library's own
#: fsyncs and renames); ``-hardened`` lets the library write into a temp dir and adds what it
#: leaves out (every file and directory fsynced, atomic rename, parent fsync).
CheckpointFormat = Literal[
    "raw", "safetensors", "safetensors-hardened", "torch-dcp", "torch-dcp-hardened", "orbax", "orbax-hardened",
]
CHECKPOINT_FORMATS: Final[tuple[CheckpointFormat, ...]] = get_args(CheckpointFormat)
FORMAT_ENV: Final = "WRITER_FORMAT"
DEFAULT_FORMAT: Final[CheckpointFormat] = "raw"
#: what each library format needs importable, and the one line that says how to get it
FORMAT_NEEDS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "safetensors": (("safetensors", "numpy"), "pip install safetensors numpy (in the default install)"),
    "torch-dcp": (("torch", "numpy"), "pip install 'ckpt-chaos-harness[torch]' (torch==2.13.0, CPU)"),
    "orbax": (("jax", "orbax.checkpoint", "numpy"),
              "pip install 'ckpt-chaos-harness[orbax]' (jax, jaxlib, orbax-checkpoint)"),
}

#: ASCII digits only, and few: ``\d`` and str.isdigit() also accept digits int() refuses ('²')
#: or read as another script's number, and int() refuses more than 4300 digits with a ValueError
_ORDINAL: Final = re.compile(r"[0-9]{1,9}")
_ORDINAL_SUFFIX: Final = re.compile(r"(?P<set>.+)-(?P<ordinal>[0-9]{1,9})")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodIdentity:
    """Who this pod is supposed to be, from its own spec; compared with the volume's stamp."""

    pod: str
    namespace: str
    statefulset: str
    ordinal: int
    claim: str


@dataclasses.dataclass(frozen=True, slots=True)
class WriterConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    keep_last: int = DEFAULT_KEEP_LAST
    max_bytes: int = DEFAULT_MAX_BYTES
    unsafe_skip: frozenset[ProtocolStep] = frozenset()
    #: threads that write shards of large checkpoints in parallel (shared by all requests)
    shard_workers: int = 4
    connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    format: CheckpointFormat = DEFAULT_FORMAT


def pod_identity_from_env(env: Mapping[str, str]) -> PodIdentity:
    pod = env.get("POD_NAME", "").strip()
    if not pod:
        raise ConfigError("POD_NAME is not set: set it from the downward API (fieldRef metadata.name), "
                          "or pass --name <statefulset>-<ordinal> outside a pod")
    m = _ORDINAL_SUFFIX.fullmatch(pod)
    raw_index = env.get("POD_INDEX", "").strip()
    if raw_index:
        if not _ORDINAL.fullmatch(raw_index):
            raise ConfigError(f"POD_INDEX={raw_index[:40]!r} is not a non-negative integer (ASCII digits, at most 9)")
        ordinal = int(raw_index)
    elif m:
        ordinal = int(m.group("ordinal"))
    else:
        raise ConfigError(f"cannot tell the ordinal: POD_INDEX is unset and POD_NAME={pod[:80]!r} has no -<ordinal> "
                          "suffix (ASCII digits, at most 9)")
    statefulset = env.get("STATEFULSET_NAME", "").strip()
    if not statefulset:
        if not m:
            raise ConfigError(f"STATEFULSET_NAME is unset and POD_NAME={pod[:80]!r} is not <statefulset>-<ordinal>")
        statefulset = m.group("set")
    namespace = env.get("POD_NAMESPACE", "").strip() or "default"
    template = env.get("CLAIM_TEMPLATE", "").strip() or "data"
    return PodIdentity(pod, namespace, statefulset, ordinal, f"{template}-{pod}")


def parse_unsafe_skip(raw: str) -> frozenset[ProtocolStep]:
    steps: set[ProtocolStep] = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if part not in PROTOCOL_STEPS:
            raise ConfigError(f"unknown protocol step {part!r} to skip; known: {', '.join(PROTOCOL_STEPS)}")
        steps.add(part)
    return frozenset(steps)


def base_format(fmt: CheckpointFormat) -> str:
    """The library family of a format: ``torch-dcp-hardened`` -> ``torch-dcp``."""
    return fmt.removesuffix("-hardened")


def missing_library(fmt: CheckpointFormat) -> str | None:
    """One line naming what ``fmt`` needs and is not installed, or None. Looks the modules up
    without importing them (torch and jax take seconds to import)."""
    needs = FORMAT_NEEDS.get(base_format(fmt))
    if needs is None:
        return None
    modules, how = needs
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"format {fmt} needs the Python module {module!r}, which is not installed: {how}"
    return None


def parse_format(raw: str) -> CheckpointFormat:
    """A format name from a flag or the environment; unknown or not installed: ConfigError."""
    name = raw.strip() or DEFAULT_FORMAT
    for known in CHECKPOINT_FORMATS:
        if name == known:
            problem = missing_library(known)
            if problem is not None:
                raise ConfigError(problem)
            return known
    raise ConfigError(f"unknown checkpoint format {name[:40]!r}; known: {', '.join(CHECKPOINT_FORMATS)}")


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be >= {minimum}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw[:40]!r} is not a number of seconds")
    return value


def writer_config(
    env: Mapping[str, str],
    data_dir: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    keep_last: int | None = None,
    max_bytes: int | None = None,
    unsafe_skip: str | None = None,
    shard_workers: int = 4,
    connection_timeout: float | None = None,
    max_connections: int | None = None,
    checkpoint_format: str | None = None,
) -> WriterConfig:
    """Flags (non-None arguments) override the environment, which overrides the defaults."""
    cfg = WriterConfig(
        data_dir=data_dir,
        host=host if host is not None else (env.get("LISTEN_HOST", "").strip() or DEFAULT_HOST),
        port=port if port is not None else env_int(env, "LISTEN_PORT", DEFAULT_PORT),
        keep_last=keep_last if keep_last is not None else env_int(env, "KEEP_LAST", DEFAULT_KEEP_LAST),
        max_bytes=max_bytes if max_bytes is not None else env_int(env, "MAX_CHECKPOINT_BYTES", DEFAULT_MAX_BYTES, 1),
        unsafe_skip=parse_unsafe_skip(unsafe_skip if unsafe_skip is not None else env.get(UNSAFE_SKIP_ENV, "")),
        shard_workers=shard_workers,
        connection_timeout=connection_timeout if connection_timeout is not None
        else env_float(env, CONNECTION_TIMEOUT_ENV, DEFAULT_CONNECTION_TIMEOUT),
        max_connections=max_connections if max_connections is not None
        else env_int(env, MAX_CONNECTIONS_ENV, DEFAULT_MAX_CONNECTIONS),
        format=parse_format(checkpoint_format if checkpoint_format is not None else env.get(FORMAT_ENV, "")),
    )
    if cfg.keep_last < 0:
        raise ConfigError(f"keep-last {cfg.keep_last} must be >= 0 (0 keeps every checkpoint)")
    if cfg.max_bytes < 1:
        raise ConfigError(f"max-bytes {cfg.max_bytes} must be >= 1")
    if not 0 <= cfg.port <= 65535:
        raise ConfigError(f"port {cfg.port} must be 0..65535 (0 picks a free port)")
    if cfg.shard_workers < 1:
        raise ConfigError(f"shard workers {cfg.shard_workers} must be >= 1")
    if not (math.isfinite(cfg.connection_timeout) and cfg.connection_timeout > 0):
        raise ConfigError(f"connection timeout {cfg.connection_timeout} must be > 0 seconds")
    if cfg.max_connections < 1:
        raise ConfigError(f"max connections {cfg.max_connections} must be >= 1")
    if cfg.unsafe_skip and cfg.format != "raw":
        raise ConfigError(f"--unsafe-skip applies to the raw format only, not {cfg.format} (a library format's default "
                          "variant already publishes exactly as its library does)")
    return cfg
