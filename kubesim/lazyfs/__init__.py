"""A lazy file system: FUSE over a backing directory that remembers what was never made durable
and drops exactly that on "power loss" — the fault that tells a writer that fsyncs from one that
does not (SIGKILL, pod deletion and node crashes keep the kernel's page cache, so they cannot).

Modelled on LazyFS (dsrhaslab/lazyfs, used by Jepsen), which keeps un-fsynced file data in its
own page cache and clears it on ``lazyfs::clear-cache``. LazyFS passes creates, renames, unlinks
and mkdirs straight to the backing file system and never undoes them (and refuses every
renameat2 flag with EINVAL), so it catches a missing file fsync but not a missing directory
fsync. This file system also models directory entries, with the rules below: what Linux
promises (fsync(2): "Calling fsync() does not necessarily ensure that the entry in the directory
containing the file has also reached disk. For that an explicit fsync() on a file descriptor for
the directory is also needed."), which is weaker than what ext4's journal happens to give (it
commits every earlier metadata change with any fsync). A writer correct here is correct on any
POSIX file system; one that relies on ext4's extras is caught.

Durability rules (each has its own test in ``tests/kubesim/lazyfs/test_rules.py``):

R1  File data. Bytes written to a file, and its size (truncate, extension), become durable when
    that file is fsynced or fdatasynced (both do the same here; timestamps are not modelled).
    After a power loss a surviving file has exactly its content as of its last fsync; a file
    never fsynced since its creation is empty.
R2  Granularity. Un-fsynced changes are dropped whole: nothing written since the last fsync
    survives, never a torn part of it (LazyFS's clear-cache; a real disk *may* keep some, which
    no correct writer can count on). ``O_SYNC``/``O_DSYNC`` writes are fsynced by the kernel.
R3  fsync of a file does NOT make its directory entry durable, nor any ancestor's: a new file,
    fsynced, in a directory never fsynced since, vanishes with the power.
R4  Directory entries. create, mknod, symlink, link, mkdir, unlink, rmdir and rename change
    their directory's entries; the entries as they are become durable when that directory is
    fsynced (fsync or fdatasync of a directory fd). After a power loss every surviving directory
    has exactly the entries of its last fsync: names added since vanish, names removed since
    come back (with their durable content, R1), renames since are undone.
R5  Reachability. A name survives only if every directory on its path survives: a directory
    whose own entry is not durable vanishes with everything under it, whatever was fsynced
    inside. A new directory whose entry is durable but that was never fsynced itself comes
    back empty.
R6  Rename. A rename over an existing name that is undone brings the replaced file back. A
    rename between two directories is one change: an fsync of either directory makes both
    halves durable (journaling file systems log a rename in one transaction), so a moved file is
    never found in both directories, nor in neither.
R7  RENAME_NOREPLACE is honoured atomically: EEXIST when the target name exists now, durable or
    not; the rename is then durable like any other (R4). RENAME_EXCHANGE and RENAME_WHITEOUT are
    refused with EINVAL (as LazyFS refuses all flags).
R8  Hard links: names are entries (R4), content belongs to the inode (R1): an fsync through
    any name makes the content durable for all of them.
R9  An unlinked file that is still open stays usable through its descriptors; if the unlink is
    undone, it comes back with its durable content, not with what was written after.
R10 Not modelled, passed through and never undone: permissions, ownership, timestamps, xattrs.
    sync(2)/syncfs(2) do not reach a FUSE daemon and make nothing durable here (stricter than
    Linux); the control channel's ``sync`` does.
R11 The mount root always exists.
R12 Power loss ends the mount: the backing directory becomes the durable image, operations of
    processes still using the mount fail (EIO, then ENOTCONN), and mounting again is the reboot
    (everything found on the backing directory is durable).
R13 A clean unmount (or the death of the process that mounted it) drops nothing: a clean shutdown
    writes the page cache back.
R14 If the daemon itself is SIGKILLed, its knowledge of what was undurable dies with it: the
    backing directory keeps everything written, and :func:`cleanup` says so.

Use: :func:`mount` / :func:`power_loss` / :func:`unmount` / :func:`cleanup` (``manage.py``), or
``python -m kubesim.lazyfs mount|power-loss|unmount|status|sync|cleanup|check|bench``. Design
choices are in ``fs.py`` (write-through with undo) and ``control.py`` (the control socket).
Needs root, ``/dev/fuse``, libfuse 3 (Debian ``fuse3 libfuse3-3``) and the ``mfusepy`` package;
:func:`unavailable_reason` names what is missing in one line.
"""

from kubesim.lazyfs.manage import (
    LazyFSError,
    LazyFSUnavailable,
    Mount,
    cleanup,
    mount,
    mounted,
    power_loss,
    status,
    sync,
    unavailable_reason,
    unmount,
)

__all__ = [
    "LazyFSError",
    "LazyFSUnavailable",
    "Mount",
    "cleanup",
    "mount",
    "mounted",
    "power_loss",
    "status",
    "sync",
    "unavailable_reason",
    "unmount",
]
