"""The durability bookkeeping of the lazy file system, with no I/O: rules R1-R9 of the package
docstring as data structures.

The file system writes everything through to the backing directory at once, so the backing
directory always holds the *live* state. What this module keeps is the rest: for every
directory the entries it had at its last fsync (``durable``) next to the entries it has now
(``live``), and for every file whose data changed since its last fsync the size it had then and
which byte ranges of that durable content were saved before being overwritten (``FileDirt``).
Power loss is then a pure question this module answers (:meth:`Model.durable_image`): which
names, reached from the root through durable entries only, survive, and with what content.

Why a model of the whole tree instead of LazyFS's per-file page cache: LazyFS drops only file
data; its creates, renames and unlinks go to the backing file system at once and are never
undone, so it cannot tell a writer that fsyncs its directories from one that does not. Here
directory entries are first-class: each directory's durable entries change only when that
directory is fsynced.

Nodes are the file system's inodes (one per file, directory, symlink or device, hard links
share one). ``live_links`` counts the live names of a node, ``durable_refs`` the durable ones
(in any directory's ``durable`` map, reachable or not: an over-count, so a file is kept a
little longer than needed, never too short). A regular file whose last live name goes while a
durable name still points at it must keep its content: the file system hard-links it into a
private graveyard first (``buried``); :meth:`Model.sync_dir` reports which buried files no
durable name needs any more.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Iterator
from typing import Literal

Kind = Literal["dir", "file", "symlink", "special"]


class IntervalSet:
    """Disjoint half-open byte ranges ``[start, end)``, kept sorted and merged."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(zip(self._starts, self._ends, strict=True))

    def __len__(self) -> int:
        return len(self._starts)

    def gaps(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` not covered yet (what still has to be saved)."""
        out: list[tuple[int, int]] = []
        pos = start
        i = bisect.bisect_right(self._ends, start)
        while pos < end:
            if i >= len(self._starts) or self._starts[i] >= end:
                out.append((pos, end))
                break
            s, e = self._starts[i], self._ends[i]
            if s > pos:
                out.append((pos, s))
            pos = max(pos, e)
            i += 1
        return out

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        i = bisect.bisect_left(self._ends, start)
        j = bisect.bisect_right(self._starts, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def covered(self) -> int:
        return sum(e - s for s, e in self)


@dataclasses.dataclass(eq=False, slots=True)
class FileDirt:
    """A file whose data changed since its last fsync: its content then was ``durable_size``
    bytes, of which the ranges in ``saved`` were copied aside before being overwritten (the
    rest of ``[0, durable_size)`` is still in the file as it was)."""

    durable_size: int
    saved: IntervalSet = dataclasses.field(default_factory=IntervalSet)

    def to_save(self, start: int, end: int) -> list[tuple[int, int]]:
        """Ranges of durable content inside ``[start, end)`` that a change there would destroy."""
        return self.saved.gaps(start, min(end, self.durable_size)) if start < self.durable_size else []


@dataclasses.dataclass(eq=False, slots=True)
class Node:
    id: int
    kind: Kind
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    #: symlinks: the link's content; specials: the device number
    target: str | None = None
    rdev: int = 0
    #: regular files: None when the content as it is now is durable (R1)
    dirt: FileDirt | None = None
    #: directories: entries now, and as of the last fsync of this directory (R4)
    live: dict[str, Node] = dataclasses.field(default_factory=dict)
    durable: dict[str, Node] = dataclasses.field(default_factory=dict)
    #: names whose live entry may differ from the durable one (the work of the next fsync)
    changed: set[str] = dataclasses.field(default_factory=set)
    #: cross-directory renames not yet durable: name here -> the other half(s) (R6)
    partners: dict[str, list[tuple[Node, str]]] = dataclasses.field(default_factory=dict)
    live_links: int = 0
    durable_refs: int = 0
    #: a regular file with no live name kept (hard-linked) in the graveyard for a durable name
    buried: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Undurable:
    """What a power loss now would drop (the ``status`` command and the power-loss answer)."""

    files_with_undurable_data: int
    undurable_entries: int
    directories_with_undurable_entries: int
    buried_files: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Model:
    """The live tree, the durable tree, and the rules that move one into the other."""

    def __init__(self, root_mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self._ids = itertools.count(1)
        self.root = Node(0, "dir", root_mode, uid, gid)
        # the mount root always exists (R11): pinned by one live and one durable reference
        self.root.live_links = self.root.durable_refs = 1

    # ---- building ----------------------------------------------------------------------
    def new_node(self, kind: Kind, mode: int, uid: int = 0, gid: int = 0, *, target: str | None = None,
                 rdev: int = 0, durable_content: bool = False) -> Node:
        """A node; a new regular file's content is not durable (R1: empty until fsynced) unless
        ``durable_content`` (a file found on the backing dir at mount, where all is durable)."""
        node = Node(next(self._ids), kind, mode, uid, gid, target, rdev)
        if kind == "file" and not durable_content:
            node.dirt = FileDirt(0)
        return node

    def adopt(self, parent: Node, name: str, node: Node) -> None:
        """An entry that exists at mount: live and durable at once (a remount is a reboot)."""
        parent.live[name] = node
        parent.durable[name] = node
        node.live_links += 1
        node.durable_refs += 1

    # ---- lookups -----------------------------------------------------------------------
    def resolve(self, path: str) -> Node | None:
        node = self.root
        for part in _parts(path):
            if node.kind != "dir":
                return None
            child = node.live.get(part)
            if child is None:
                return None
            node = child
        return node

    def parent(self, path: str) -> tuple[Node, str]:
        """The live directory holding ``path`` and the last component; raises like the syscall."""
        parts = _parts(path)
        if not parts:
            raise PermissionError("the mount root has no parent here")
        node = self.resolve("/".join(parts[:-1]))
        if node is None:
            raise FileNotFoundError(path)
        if node.kind != "dir":
            raise NotADirectoryError(path)
        return node, parts[-1]

    # ---- namespace changes (R4-R9) -----------------------------------------------------
    def add_entry(self, parent: Node, name: str, node: Node) -> None:
        """create, mkdir, mknod, symlink, link: a new live name, durable at the parent's fsync."""
        parent.live[name] = node
        node.live_links += 1
        parent.changed.add(name)

    def needs_burial(self, node: Node) -> bool:
        """Removing this node's last live name must first keep its content aside (R4: an
        unlink that is not durable is undone by a power loss, content included)."""
        return node.kind == "file" and node.live_links == 1 and node.durable_refs > 0 and not node.buried

    def remove_entry(self, parent: Node, name: str) -> tuple[Node, list[Node]]:
        """unlink, rmdir: the removed node and the nodes nothing references any more."""
        node = parent.live.pop(name)
        node.live_links -= 1
        parent.changed.add(name)
        released: list[Node] = []
        self._maybe_release(node, released)
        return node, released

    def rename(self, src: Node, sname: str, dst: Node, dname: str) -> list[Node]:
        """Move a live name; a replaced target loses its live name (and comes back with the
        rename's undo, R6). Returns the nodes nothing references any more."""
        node = src.live[sname]
        replaced = dst.live.get(dname)
        released: list[Node] = []
        if replaced is node:  # two names of one inode: rename(2) does nothing
            return released
        del src.live[sname]
        src.changed.add(sname)
        dst.live[dname] = node
        dst.changed.add(dname)
        if src is not dst:
            src.partners.setdefault(sname, []).append((dst, dname))
            dst.partners.setdefault(dname, []).append((src, sname))
        if replaced is not None:
            replaced.live_links -= 1
            self._maybe_release(replaced, released)
        return released

    # ---- fsync -------------------------------------------------------------------------
    def sync_file(self, node: Node) -> None:
        """fsync/fdatasync of a file: its content and size are durable (R1), its names are not (R3)."""
        node.dirt = None

    def make_dirty(self, node: Node, current_size: int) -> FileDirt:
        """First change since the last fsync: the content as it is now is what is durable."""
        if node.dirt is None:
            node.dirt = FileDirt(current_size)
        return node.dirt

    def sync_dir(self, directory: Node) -> list[Node]:
        """fsync of a directory: its entries as they are now are durable (R4), and so is the
        other half of every cross-directory rename touching it (R6). Returns the nodes that
        lost their last reference (buried files whose graveyard copy can go)."""
        released: list[Node] = []
        for name in list(directory.changed):
            self._commit(directory, name, released)
        directory.changed.clear()
        for name, others in list(directory.partners.items()):
            for other, oname in others:
                self._commit(other, oname, released)
                back = other.partners.get(oname)
                if back is not None:
                    back[:] = [(d, n) for d, n in back if not (d is directory and n == name)]
                    if not back:
                        del other.partners[oname]
                if oname in other.changed and other.live.get(oname) is other.durable.get(oname):
                    other.changed.discard(oname)
        directory.partners.clear()
        return released

    def _commit(self, directory: Node, name: str, released: list[Node]) -> None:
        old = directory.durable.get(name)
        new = directory.live.get(name)
        if old is new:
            return
        if new is None:
            del directory.durable[name]
        else:
            directory.durable[name] = new
            new.durable_refs += 1
        if old is not None:
            old.durable_refs -= 1
            self._maybe_release(old, released)

    def _maybe_release(self, node: Node, released: list[Node]) -> None:
        """A node with no live and no durable name is gone for good; a directory's durable
        entries go with it (they can no longer be reached)."""
        if node.live_links > 0 or node.durable_refs > 0:
            return
        released.append(node)
        if node.kind == "dir":
            children = list(node.durable.values())
            node.durable.clear()
            node.changed.clear()
            for child in children:
                child.durable_refs -= 1
                self._maybe_release(child, released)

    # ---- power loss --------------------------------------------------------------------
    def durable_image(self) -> list[tuple[tuple[str, ...], Node]]:
        """Every name that survives a power loss now, parents before children (R4, R5): reached
        from the root through durable entries only. A directory reached twice (moved by two
        renames whose halves were made durable separately) keeps its first place only."""
        out: list[tuple[tuple[str, ...], Node]] = []
        seen_dirs = {self.root.id}
        stack: list[tuple[tuple[str, ...], Node]] = [((), self.root)]
        while stack:
            path, directory = stack.pop()
            for name in sorted(directory.durable, reverse=True):
                child = directory.durable[name]
                if child.kind == "dir":
                    if child.id in seen_dirs:
                        continue
                    seen_dirs.add(child.id)
                out_path = (*path, name)
                out.append((out_path, child))
                if child.kind == "dir":
                    stack.append((out_path, child))
        out.sort(key=lambda item: len(item[0]))
        return out

    def live_paths(self) -> dict[int, tuple[str, ...]]:
        """One live path per node (where a surviving file's content is found at power loss)."""
        out: dict[int, tuple[str, ...]] = {self.root.id: ()}
        stack: list[tuple[tuple[str, ...], Node]] = [((), self.root)]
        while stack:
            path, directory = stack.pop()
            for name, child in directory.live.items():
                if child.id in out:
                    continue
                out[child.id] = (*path, name)
                if child.kind == "dir":
                    stack.append(((*path, name), child))
        return out

    def undurable(self) -> Undurable:
        dirty_files = 0
        entries = 0
        dirs = 0
        buried = 0
        seen: set[int] = set()
        stack = [self.root]
        # walk everything that is live or durable: both trees
        while stack:
            d = stack.pop()
            if d.id in seen:
                continue
            seen.add(d.id)
            differing = [n for n in d.changed if d.live.get(n) is not d.durable.get(n)]
            if differing:
                dirs += 1
                entries += len(differing)
            for child in itertools.chain(d.live.values(), d.durable.values()):
                if child.kind == "dir":
                    stack.append(child)
                elif child.id not in seen:
                    seen.add(child.id)
                    dirty_files += child.dirt is not None
                    buried += child.buried
        return Undurable(dirty_files, entries, dirs, buried)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]
