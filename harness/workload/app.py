"""The writer's life: boot (identity check, then recovery), serving, shutdown.

Readiness means exactly "the volume is ours and recovered": the HTTP server answers liveness
from the first moment (a long recovery must not get the pod killed), while ``/readyz`` and
POST answer 503 until the identity stamp matched and boot recovery finished.
"""

from __future__ import annotations

import dataclasses
import datetime
import secrets
import threading
import time
from typing import Literal

from harness.workload import config, events, fsutil, identity, layout, recovery, store

State = Literal["booting", "ready", "identity-mismatch", "failed", "stopping"]


def new_epoch() -> str:
    """A fresh id per process start: sortable by time, unique by the random suffix."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{now}-{secrets.token_hex(4)}"


@dataclasses.dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    state: State
    reason: str | None


class WriterApp:
    def __init__(
        self,
        cfg: config.WriterConfig,
        pod: config.PodIdentity,
        log: events.EventLog,
        disk: fsutil.Disk | None = None,
    ) -> None:
        self.cfg = cfg
        self.pod = pod
        self.log = log
        self.disk = disk if disk is not None else fsutil.Disk()
        self.epoch = new_epoch()
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._state: State = "booting"
        self._reason: str | None = "boot recovery in progress"
        self.identity: identity.IdentityResult | None = None
        self.recovery: recovery.RecoveryReport | None = None
        self.store: store.CheckpointStore | None = None
        self.boot_seconds: float | None = None
        self.fatal = threading.Event()

    # ---- boot --------------------------------------------------------------------------
    def boot(self) -> None:
        """Identity first (a wrong volume is never modified), then recovery, then ready."""
        try:
            self._boot()
        except OSError as exc:
            self._set("failed", f"boot failed: {exc}")
            self.log.event("boot.failed", error=str(exc))
            self.fatal.set()

    def _boot(self) -> None:
        data = self.cfg.data_dir
        result = identity.establish(data, self.pod, self.disk)
        self.identity = result
        if not result.ok:
            self._set("identity-mismatch", result.problem)
            self.log.event("identity.mismatch", problem=result.problem, expected=dataclasses.asdict(self.pod),
                           stamp=dataclasses.asdict(result.stamp) if result.stamp else None, ready=False)
            return
        assert result.stamp is not None  # a matched or freshly written stamp
        self.log.event(f"identity.{result.outcome}", stamp=dataclasses.asdict(result.stamp))
        ckdir = layout.checkpoints_dir(data)
        if not ckdir.is_dir():
            self.disk.mkdir(ckdir)
        # Every boot, not only the one that made it: that boot may have crashed between the
        # mkdir and this fsync, and the directory, still visible from the page cache, would
        # hold acknowledged checkpoints that a power loss takes away with it.
        self.disk.fsync_dir(data)
        self.log.event("recovery.start", checkpoints_dir=str(ckdir),
                       note="removing temp dirs, validating the newest checkpoints; not ready until done")
        report = recovery.recover(ckdir, self.pod.ordinal, self.disk, self.log)
        self.recovery = report
        self.store = store.CheckpointStore(
            ckdir,
            ordinal=self.pod.ordinal,
            volume_id=result.stamp.volume_id,
            epoch=self.epoch,
            recovered=report,
            keep_last=self.cfg.keep_last,
            unsafe_skip=self.cfg.unsafe_skip,
            log=self.log,
            disk=self.disk,
            shard_workers=self.cfg.shard_workers,
            checkpoint_format=self.cfg.format,
        )
        self.boot_seconds = time.monotonic() - self.started
        self._set("ready", None)
        self.log.event(
            "ready",
            ordinal=self.pod.ordinal,
            epoch=self.epoch,
            latest_valid_step=report.latest_valid_step,
            checkpoints=len(report.entries),
            torn=sum(1 for e in report.entries if not e.valid),
            removed_temp_dirs=report.removed_temp_dirs,
            removed_temp_bytes=report.removed_temp_bytes,
            recovery_seconds=round(report.seconds, 6),
            boot_seconds=round(self.boot_seconds, 6),
        )

    # ---- state -------------------------------------------------------------------------
    def _set(self, state: State, reason: str | None) -> None:
        with self._lock:
            self._state = state
            self._reason = reason

    def readiness(self) -> Readiness:
        with self._lock:
            return Readiness(self._state == "ready", self._state, self._reason)

    def ready_store(self) -> store.CheckpointStore | None:
        """The store, only while ready (POST and listings need a recovered volume)."""
        with self._lock:
            return self.store if self._state == "ready" else None

    def stop(self, drain_seconds: float) -> bool:
        with self._lock:
            was = self._state
            self._state, self._reason = "stopping", "shutting down"
        if self.store is None or was != "ready":
            return True
        return self.store.close(drain_seconds)
