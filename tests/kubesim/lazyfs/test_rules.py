"""One test per durability rule of ``kubesim/lazyfs/__init__.py`` (R1-R14), with real syscalls
through a real mount; after the power loss the backing directory is what a disk would hold.

Each test also checks the other side of its rule (what the fsync does make durable, or what a
missing one drops), so a file system that kept everything or dropped everything fails too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from lazyfs_support import RENAME_EXCHANGE, RENAME_NOREPLACE, Lazy, fsync_dir, renameat2, require_lazyfs, write_file

from kubesim import lazyfs
from kubesim.lazyfs import mountinfo


@pytest.mark.parametrize("sync", [os.fsync, os.fdatasync], ids=["fsync", "fdatasync"])
def test_r1_file_data_is_durable_at_its_fsync_and_not_after(lazy: Lazy, sync: object) -> None:
    """R1: content as of the last fsync or fdatasync survives; later writes do not."""
    fd = os.open(lazy.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"durable")
    sync(fd)  # type: ignore[operator]
    os.write(fd, b" and lost")
    os.close(fd)
    fsync_dir(lazy.p("."))
    assert (lazy.mnt / "f").read_bytes() == b"durable and lost"
    lazy.power_loss()
    assert lazy.tree() == {"f": b"durable"}


def test_r1_a_file_never_fsynced_comes_back_empty(lazy: Lazy) -> None:
    """R1: its entry is durable (the directory was fsynced), its data never was."""
    write_file(lazy.p("f"), b"never fsynced", fsync=False)
    fsync_dir(lazy.p("."))
    lazy.power_loss()
    assert lazy.tree() == {"f": b""}


def test_r1_overwrites_and_truncates_since_the_fsync_are_undone(lazy: Lazy) -> None:
    """R1: size changes and overwritten durable bytes come back as they were at the fsync."""
    write_file(lazy.p("f"), b"0123456789")
    fsync_dir(lazy.p("."))
    fd = os.open(lazy.p("f"), os.O_RDWR)
    os.pwrite(fd, b"XY", 4)
    os.ftruncate(fd, 2)
    os.pwrite(fd, b"ABCDEFGHIJKLMNOP", 1)
    os.close(fd)
    os.truncate(lazy.p("f"), 3)
    assert (lazy.mnt / "f").read_bytes() == b"0AB"
    lazy.power_loss()
    assert lazy.tree() == {"f": b"0123456789"}


def test_r1_o_trunc_is_undone_and_fsync_after_it_is_durable(lazy: Lazy) -> None:
    """R1: open(O_TRUNC) is a size change like truncate; an fsync after it makes the new content durable."""
    write_file(lazy.p("a"), b"old a")
    write_file(lazy.p("b"), b"old b")
    fsync_dir(lazy.p("."))
    write_file(lazy.p("a"), b"new", fsync=False, flags=os.O_TRUNC)
    write_file(lazy.p("b"), b"new", fsync=True, flags=os.O_TRUNC)
    lazy.power_loss()
    assert lazy.tree() == {"a": b"old a", "b": b"new"}


def test_r2_unsynced_writes_are_dropped_whole_and_o_sync_writes_are_not(lazy: Lazy) -> None:
    """R2: many small writes after the fsync: none survives; an O_SYNC write is fsynced by the kernel."""
    write_file(lazy.p("f"), b"base")
    write_file(lazy.p("s"), b"", fsync=True)
    fsync_dir(lazy.p("."))
    fd = os.open(lazy.p("f"), os.O_WRONLY | os.O_APPEND)
    for i in range(50):
        os.write(fd, b"%d," % i)
    os.close(fd)
    fd = os.open(lazy.p("s"), os.O_WRONLY | os.O_SYNC)
    os.write(fd, b"synchronous")
    os.close(fd)
    lazy.power_loss()
    assert lazy.tree() == {"f": b"base", "s": b"synchronous"}


def test_r3_fsync_of_a_file_does_not_make_its_entry_durable(lazy: Lazy) -> None:
    """R3: a new file, fsynced, in a directory not fsynced since: gone. With the directory fsync: there."""
    write_file(lazy.p("unlisted"), b"fsynced data")
    fsync_dir(lazy.p("."))
    write_file(lazy.p("late"), b"fsynced too")  # after the directory's last fsync
    lazy.power_loss()
    assert lazy.tree() == {"unlisted": b"fsynced data"}


def test_r4_names_created_since_the_directory_fsync_vanish(lazy: Lazy) -> None:
    """R4: create, mkdir, symlink, mknod since the last fsync of their directory are undone."""
    os.mkdir(lazy.p("d"))
    write_file(lazy.p("d/kept"), b"k")
    fsync_dir(lazy.p("d"))
    fsync_dir(lazy.p("."))
    write_file(lazy.p("d/new"), b"n")
    os.mkdir(lazy.p("d/newdir"))
    os.symlink("kept", lazy.p("d/link"))
    os.mkfifo(lazy.p("d/fifo"))
    assert sorted(os.listdir(lazy.p("d"))) == ["fifo", "kept", "link", "new", "newdir"]
    lazy.power_loss()
    assert lazy.tree() == {"d": None, "d/kept": b"k"}


def test_r4_names_removed_since_the_directory_fsync_come_back(lazy: Lazy) -> None:
    """R4: unlink and rmdir not made durable are undone, content included; made durable they stick."""
    write_file(lazy.p("back"), b"back")
    write_file(lazy.p("gone"), b"gone")
    os.mkdir(lazy.p("empty"))
    fsync_dir(lazy.p("."))
    os.unlink(lazy.p("gone"))
    os.mkdir(lazy.p("sub"))
    fsync_dir(lazy.p("."))  # the unlink of gone and the mkdir of sub are durable
    write_file(lazy.p("sub/f"), b"sub f")
    fsync_dir(lazy.p("sub"))
    os.unlink(lazy.p("sub/f"))
    os.unlink(lazy.p("back"))
    os.rmdir(lazy.p("empty"))
    assert sorted(os.listdir(lazy.mnt)) == ["sub"]
    assert lazy.status()["buried_files"] == 2
    lazy.power_loss()
    assert lazy.tree() == {"back": b"back", "empty": None, "sub": None, "sub/f": b"sub f"}


def test_r4_a_rename_is_undone_until_its_directory_is_fsynced(lazy: Lazy) -> None:
    """R4: rename within a directory: undone without the directory fsync, kept with it."""
    os.mkdir(lazy.p("d"))
    for name in ("a", "b"):
        write_file(lazy.p(f"d/{name}"), name.encode())
    fsync_dir(lazy.p("d"))
    fsync_dir(lazy.p("."))
    os.rename(lazy.p("d/a"), lazy.p("d/a2"))
    fsync_dir(lazy.p("d"))
    os.rename(lazy.p("d/b"), lazy.p("d/b2"))
    lazy.power_loss()
    assert lazy.tree() == {"d": None, "d/a2": b"a", "d/b": b"b"}


def test_r5_a_directory_whose_entry_is_not_durable_takes_everything_with_it(lazy: Lazy) -> None:
    """R5: everything fsynced inside a directory whose own entry never became durable is lost;
    a durable directory never fsynced itself comes back empty."""
    os.mkdir(lazy.p("unlisted"))
    write_file(lazy.p("unlisted/f"), b"fsynced")
    fsync_dir(lazy.p("unlisted"))
    os.mkdir(lazy.p("listed"))
    fsync_dir(lazy.p("."))
    write_file(lazy.p("listed/f"), b"fsynced")
    os.rename(lazy.p("unlisted"), lazy.p("renamed-unlisted"))
    assert os.listdir(lazy.p("listed")) == ["f"]
    lazy.power_loss()
    assert lazy.tree() == {"listed": None, "unlisted": None, "unlisted/f": b"fsynced"}


def test_r6_an_undone_rename_over_a_file_brings_the_replaced_file_back(lazy: Lazy) -> None:
    """R6: rename(new, target) not made durable: the target has its old content again."""
    write_file(lazy.p("target"), b"old")
    write_file(lazy.p("new"), b"new")
    fsync_dir(lazy.p("."))
    os.rename(lazy.p("new"), lazy.p("target"))
    assert (lazy.mnt / "target").read_bytes() == b"new"
    lazy.power_loss()
    assert lazy.tree() == {"new": b"new", "target": b"old"}


@pytest.mark.parametrize("fsynced", ["source", "destination"])
def test_r6_a_cross_directory_rename_is_made_durable_whole_by_either_directory(lazy: Lazy, fsynced: str) -> None:
    """R6: one fsync of either directory: the file is in the destination only, never in both or neither."""
    for d in ("x", "y"):
        os.mkdir(lazy.p(d))
    write_file(lazy.p("x/f"), b"f")
    fsync_dir(lazy.p("x"))
    fsync_dir(lazy.p("y"))
    fsync_dir(lazy.p("."))
    os.rename(lazy.p("x/f"), lazy.p("y/f"))
    fsync_dir(lazy.p("x" if fsynced == "source" else "y"))
    lazy.power_loss()
    assert lazy.tree() == {"x": None, "y": None, "y/f": b"f"}


def test_r6_a_cross_directory_rename_without_fsync_is_undone_whole(lazy: Lazy) -> None:
    """R6: neither directory fsynced: the file is back in the source only."""
    for d in ("x", "y"):
        os.mkdir(lazy.p(d))
    write_file(lazy.p("x/f"), b"f")
    fsync_dir(lazy.p("x"))
    fsync_dir(lazy.p("."))
    os.rename(lazy.p("x/f"), lazy.p("y/f"))
    lazy.power_loss()
    assert lazy.tree() == {"x": None, "x/f": b"f", "y": None}


def test_r7_rename_noreplace_is_enforced_and_undone_like_any_rename(lazy: Lazy) -> None:
    """R7: EEXIST on an existing target (durable or not); EINVAL for RENAME_EXCHANGE; a
    NOREPLACE rename without the directory fsync is undone."""
    write_file(lazy.p("durable"), b"d")
    fsync_dir(lazy.p("."))
    write_file(lazy.p("fresh"), b"f")  # exists, not durable
    write_file(lazy.p("src"), b"s")
    for target in ("durable", "fresh"):
        with pytest.raises(FileExistsError):
            renameat2(lazy.p("src"), lazy.p(target), RENAME_NOREPLACE)
    with pytest.raises(OSError, match="Invalid argument") as exc:
        renameat2(lazy.p("src"), lazy.p("fresh"), RENAME_EXCHANGE)
    assert exc.value.errno == errno.EINVAL
    assert (lazy.mnt / "fresh").read_bytes() == b"f"
    assert (lazy.mnt / "durable").read_bytes() == b"d"
    renameat2(lazy.p("durable"), lazy.p("moved"), RENAME_NOREPLACE)
    assert sorted(os.listdir(lazy.mnt)) == ["fresh", "moved", "src"]
    lazy.power_loss()
    assert lazy.tree() == {"durable": b"d"}


def test_r8_hard_links_share_content_durability(lazy: Lazy) -> None:
    """R8: a link is an entry (durable with its directory); content fsynced through one name is
    durable for all."""
    write_file(lazy.p("a"), b"v1")
    os.link(lazy.p("a"), lazy.p("b"))
    fsync_dir(lazy.p("."))
    os.link(lazy.p("a"), lazy.p("c"))  # never durable
    fd = os.open(lazy.p("b"), os.O_WRONLY)
    os.pwrite(fd, b"v2", 0)
    os.close(fd)
    fd = os.open(lazy.p("a"), os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    lazy.power_loss()
    assert lazy.tree() == {"a": b"v2", "b": b"v2"}
    assert os.stat(lazy.b("a")).st_ino == os.stat(lazy.b("b")).st_ino


@pytest.mark.parametrize("fsync_after_unlink", [False, True])
def test_r9_an_unlinked_open_file_comes_back_with_its_durable_content(lazy: Lazy, fsync_after_unlink: bool) -> None:
    """R9: writes through the descriptor of an unlinked file follow R1 when the unlink is undone."""
    write_file(lazy.p("f"), b"before")
    fsync_dir(lazy.p("."))
    fd = os.open(lazy.p("f"), os.O_RDWR)
    os.unlink(lazy.p("f"))
    os.pwrite(fd, b"AFTER!", 0)
    os.ftruncate(fd, 5)
    if fsync_after_unlink:
        os.fsync(fd)
    assert os.pread(fd, 10, 0) == b"AFTER"
    os.close(fd)
    assert os.listdir(lazy.mnt) == []
    lazy.power_loss()
    assert lazy.tree() == {"f": b"AFTER" if fsync_after_unlink else b"before"}


def test_r10_attributes_are_never_undone_and_sync_makes_nothing_durable(lazy: Lazy) -> None:
    """R10: chmod/utime pass through and stay; sync(2) does not reach the daemon."""
    write_file(lazy.p("f"), b"f")
    fsync_dir(lazy.p("."))
    os.chmod(lazy.p("f"), 0o600)
    os.utime(lazy.p("f"), ns=(10**18, 10**18))
    write_file(lazy.p("new"), b"n")
    os.sync()
    lazy.power_loss()
    assert lazy.tree() == {"f": b"f"}
    st = os.stat(lazy.b("f"))
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_mtime_ns == 10**18


def test_r11_r12_power_loss_ends_the_mount_and_a_remount_is_a_reboot(lazy: Lazy) -> None:
    """R11: the root survives an empty image. R12: a process still using the mount gets errors,
    the mount is gone, and after remounting everything found is durable."""
    write_file(lazy.p("f"), b"f")
    fd = os.open(lazy.p("f"), os.O_RDWR)
    lazy.power_loss()
    assert lazy.backing.is_dir()
    assert lazy.tree() == {}
    assert not mountinfo.anything_at(lazy.mnt)
    with pytest.raises(OSError, match=r"Input/output error|not connected|aborted") as exc:
        os.pwrite(fd, b"x", 0)
    assert exc.value.errno in (errno.EIO, errno.ENOTCONN, errno.ECONNABORTED)
    with contextlib.suppress(OSError):  # the flush on close fails the same way
        os.close(fd)
    lazy.remount()
    write_file(lazy.p("g"), b"g")
    fsync_dir(lazy.p("."))
    write_file(lazy.p("h"), b"h", fsync=False)
    lazy.power_loss()
    lazy.remount()
    assert sorted(os.listdir(lazy.mnt)) == ["g"]
    lazy.power_loss()  # nothing new since the remount: nothing is dropped
    assert lazy.tree() == {"g": b"g"}


def test_r13_a_clean_unmount_drops_nothing(lazy: Lazy) -> None:
    """R13: a clean shutdown writes everything back: no fsync needed."""
    os.mkdir(lazy.p("d"))
    write_file(lazy.p("d/f"), b"never fsynced", fsync=False)
    assert lazy.mount is not None
    lazyfs.unmount(lazy.mount)
    lazy.mount = None
    assert lazy.tree() == {"d": None, "d/f": b"never fsynced"}


def test_r13_the_mount_ends_with_the_process_that_made_it(tmp_path: Path) -> None:
    """R13: the owner of a mount is SIGKILLed: the daemon sees it (pidfd) and unmounts cleanly."""
    require_lazyfs()
    backing, mnt, state = (tmp_path / d for d in ("b", "m", "s"))
    for d in (backing, mnt, state):
        d.mkdir()
    code = ("import sys, pathlib; from kubesim import lazyfs; "
            "lazyfs.mount(*(pathlib.Path(a) for a in sys.argv[1:4])); "
            "open(sys.argv[2] + '/f', 'wb').write(b'unsynced'); print('mounted', flush=True); sys.stdin.read()")
    owner = subprocess.Popen([sys.executable, "-c", code, str(backing), str(mnt), str(state)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "mounted"
        (m,) = lazyfs.manage.find(state)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        assert lazyfs.manage._await_exit(m, 15), "the daemon did not end with its owner"
    finally:
        if owner.poll() is None:
            owner.kill()
        lazyfs.cleanup(state)
    assert not mountinfo.anything_at(mnt)
    assert (backing / "f").read_bytes() == b"unsynced"
    assert not (backing / ".lazyfs-private").exists()


def test_r14_a_killed_daemon_leaves_a_dead_mount_that_cleanup_removes(lazy: Lazy) -> None:
    """R14: SIGKILL of the daemon: the mount is dead; cleanup detaches it, says the drop was
    impossible, and the next mount works."""
    write_file(lazy.p("f"), b"unsynced", fsync=False)
    assert lazy.mount is not None
    os.kill(lazy.mount.pid, signal.SIGKILL)
    assert lazyfs.manage._await_exit(lazy.mount, 10)
    assert mountinfo.lazyfs_at(lazy.mnt) is not None, "a SIGKILLed daemon leaves its mount behind"
    lines = lazyfs.cleanup(lazy.state, live=False)
    assert any("detached dead mount" in line for line in lines), lines
    assert any("could not be dropped" in line for line in lines), lines
    assert not mountinfo.anything_at(lazy.mnt)
    assert lazy.tree() == {"f": b"unsynced"}
    lazy.mount = None
    lazy.remount()
    assert os.listdir(lazy.mnt) == ["f"]
