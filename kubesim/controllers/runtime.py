"""client-go's controller shape, small: shared informers, work queues, a manager running reconcilers.

Why this shape: controllers must be level-triggered and survive a control-plane restart by
re-listing, exactly like kube-controller-manager. So every controller

* reads the cluster only through :class:`Informer` caches (list, then watch from the list's
  resourceVersion; a 410 Gone re-lists and reports the difference as add/update/delete; a dropped
  stream re-watches from the last resourceVersion seen, re-listing only if that is too old),
* turns events into keys on its :class:`WorkQueue` (deduplicated; one worker holds a key at a
  time; ``add_after`` for timed re-checks instead of sleeping),
* implements ``reconcile(key)``; a reconcile that raises is logged and retried with per-key
  exponential backoff (client-go's ``ItemExponentialFailureRateLimiter``), never killing the manager.

Keys are ``"namespace/name"`` (or ``"name"`` for cluster-scoped objects).
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from kubesim import client
from kubesim.apiserver import selectors
from kubesim.controllers import events, settings

Obj = dict[str, Any]
Handler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]

log = logging.getLogger("kubesim.controllers")

_WATCH_TIMEOUT = 300
_RETRY_MIN = 0.1
_RETRY_MAX = 2.0


def split_key(key: str) -> tuple[str, str]:
    """``"ns/name"`` → ``("ns", "name")``; ``"name"`` → ``("", "name")``."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else ("", ns)


def _ident(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """A watched, thread-safe cache of one resource (optionally one namespace / selector)."""

    def __init__(self, api: client.Client, plural: str, namespace: str = "", *, label_selector: str = "",
                 field_selector: str = "") -> None:
        self.api = api
        self.plural = plural
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._res = client.resolve(plural)
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, str], Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[tuple[str, str]]]] = {}
        self._handlers: list[tuple[Handler | None, UpdateHandler | None, Handler | None]] = []
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._stream: client.WatchStream | None = None
        self._watching = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_rv = ""
        self.relists = 0
        """How many times the cache was rebuilt by a list (1 after start; more after 410s) — tests read it."""

    # ----- reading --------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def get_key(self, key: str) -> Obj | None:
        return self.get(*split_key(key))

    def list(self, namespace: str | None = None, label_selector: selectors.LabelSelector | None = None) -> list[Obj]:
        """Cached objects (shared: do not mutate them — copy first)."""
        with self._lock:
            objs = list(self._cache.values())
        out = []
        for obj in objs:
            if namespace is not None and _ident(obj)[0] != namespace:
                continue
            if label_selector is not None and not label_selector.matches(
                    (obj.get("metadata") or {}).get("labels") or {}):
                continue
            out.append(obj)
        return out

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Maintain ``by_index(name, value)``: e.g. pods by ``spec.nodeName``, objects by owner uid."""
        with self._lock:
            self._indexers[name] = func
            index: dict[str, set[tuple[str, str]]] = {}
            for ident, obj in self._cache.items():
                for value in func(obj):
                    index.setdefault(value, set()).add(ident)
            self._indices[name] = index

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        with self._lock:
            idents = self._indices[name].get(value, set())
            return [self._cache[i] for i in idents if i in self._cache]

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def wait_watching(self, timeout: float | None = None) -> bool:
        """Wait until a watch stream is open (events after this point are delivered without a re-list)."""
        return self._watching.wait(timeout)

    def drop_watch(self) -> None:
        """Close the current watch as a broken connection would; the informer re-watches from its last RV."""
        with self._lock:
            stream = self._stream
            self._watching.clear()
        if stream is not None:
            stream.close()

    # ----- handlers -------------------------------------------------------------------------------

    def add_handler(self, on_add: Handler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: Handler | None = None) -> None:
        """Register callbacks; objects already cached are replayed to ``on_add`` (as client-go does)."""
        with self._lock:
            self._handlers.append((on_add, on_update, on_delete))
            existing = list(self._cache.values()) if on_add else []
        for obj in existing:
            self._call(on_add, obj)

    def _call(self, func: Callable[..., None] | None, *args: Obj) -> None:
        if func is None:
            return
        try:
            func(*args)
        except Exception:
            log.exception("%s informer handler failed", self.plural)

    def _index_put(self, ident: tuple[str, str], old: Obj | None, new: Obj | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            if old is not None:
                for value in func(old):
                    members = index.get(value)
                    if members is not None:
                        members.discard(ident)
                        if not members:
                            del index[value]
            if new is not None:
                for value in func(new):
                    index.setdefault(value, set()).add(ident)

    def _apply(self, etype: str, obj: Obj) -> None:
        ident = _ident(obj)
        with self._lock:
            old = self._cache.get(ident)
            if etype == "DELETED":
                self._cache.pop(ident, None)
            else:
                self._cache[ident] = obj
            self._index_put(ident, old, None if etype == "DELETED" else obj)
            handlers = list(self._handlers)
        for on_add, on_update, on_delete in handlers:
            if etype == "DELETED":
                self._call(on_delete, old or obj)
            elif old is None:
                self._call(on_add, obj)
            else:
                self._call(on_update, old, obj)

    def _replace(self, items: builtins.list[Obj]) -> None:
        """A fresh list: deliver what changed since the cache last looked (adds, updates, deletes)."""
        fresh = {_ident(o): o for o in items}
        with self._lock:
            gone = [o for i, o in self._cache.items() if i not in fresh]
        for obj in gone:
            self._apply("DELETED", obj)
        for ident, obj in fresh.items():
            with self._lock:
                old = self._cache.get(ident)
            if old is not None and _rv(old) == _rv(obj):
                continue
            self._apply("MODIFIED" if old is not None else "ADDED", obj)

    # ----- running --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"informer-{self.plural}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _list(self) -> None:
        items, rv = self.api.list(self.plural, self.namespace, label_selector=self.label_selector,
                                  field_selector=self.field_selector)
        self._replace(items)
        self.last_rv = rv
        self.relists += 1
        self._synced.set()

    def _run(self) -> None:
        need_list = True
        delay = _RETRY_MIN
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                delay = _RETRY_MIN  # the server ended the stream normally (timeoutSeconds): re-watch
            except client.Gone:
                log.info("%s watch from resourceVersion %s expired; re-listing", self.plural, self.last_rv)
                need_list = True
            except client.ApiError as exc:
                if self._stop.is_set():
                    return
                log.info("%s informer: %s; retrying in %.1fs", self.plural, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s informer failed; re-listing in %.1fs", self.plural, delay)
                need_list = True
                self._stop.wait(delay)
                delay = min(delay * 2, _RETRY_MAX)

    def _watch(self) -> None:
        stream = self.api.watch(self.plural, self.namespace, resource_version=self.last_rv,
                                label_selector=self.label_selector, field_selector=self.field_selector,
                                timeout_seconds=_WATCH_TIMEOUT)
        with self._lock:
            self._stream = stream
            self._watching.set()
        try:
            if self._stop.is_set():
                return
            for etype, obj in stream:
                rv = _rv(obj)
                if etype == "BOOKMARK":
                    if rv:
                        self.last_rv = rv
                    continue
                self._apply(etype, obj)
                if rv:
                    self.last_rv = rv
        finally:
            stream.close()
            with self._lock:
                if self._stream is stream:
                    self._stream = None
                    self._watching.clear()


class WorkQueue:
    """client-go's workqueue: dedup, one worker per key at a time, delayed adds, per-key failure backoff."""

    def __init__(self, name: str = "", *, backoff_base: float = 0.05, backoff_max: float = 30.0) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}  # key -> earliest pending add_after time (client-go's waitingForQueue)
        self._seq = itertools.count()
        self._failures: dict[str, int] = {}
        self._base, self._max = backoff_base, backoff_max
        self._shutdown = False

    def add(self, key: str) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: str) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: str, seconds: float) -> None:
        """Deliver ``key`` after ``seconds``; only the earliest pending time per key is kept (client-go's AddAfter).

        So a reconcile may return its deadline on every pass without timers piling up, and callers must
        NOT keep their own "a re-check is already pending" bookkeeping: any earlier add (a rate-limited
        retry after a 409, say) supersedes a later timer here, and a caller that then declines to ask
        again loses the re-check for good (the node that never went Unknown after its kubelet crashed).
        """
        if seconds <= 0:
            self.add(key)
            return
        when = time.monotonic() + seconds
        with self._cond:
            if self._shutdown:
                return
            due = self._due.get(key)
            if due is not None and due <= when:
                return  # already due no later than that: one delivery covers both
            self._due[key] = when
            heapq.heappush(self._delayed, (when, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Re-add after this key's next backoff step (base·2^failures, capped); returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay: float = min(self._base * (2.0 ** failures), self._max)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next failure starts from the base backoff again."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> str | None:
        """Block for the next key (None on shutdown or timeout); call :meth:`done` when finished with it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._promote_locked()
                if self._queue:
                    key = self._queue.pop(0)
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                if self._shutdown:
                    return None
                wait = None if deadline is None else deadline - time.monotonic()
                if self._delayed:
                    until = self._delayed[0][0] - time.monotonic()
                    wait = until if wait is None else min(wait, until)
                if wait is not None and wait <= 0:
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
                    continue
                self._cond.wait(wait)

    def _promote_locked(self) -> None:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            when, _seq, key = heapq.heappop(self._delayed)
            if self._due.get(key) != when:
                continue  # superseded by an earlier add_after of the same key
            del self._due[key]
            self._add_locked(key)

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()


class Controller(Protocol):
    """A reconciler the :class:`Manager` runs."""

    name: str

    def setup(self, mgr: Manager) -> None:
        """Get informers from ``mgr`` and register handlers that enqueue keys (``mgr.enqueue(self, key)``)."""

    def reconcile(self, key: str) -> float | None:
        """Make the world match the spec for ``key``; return seconds until a re-check, or None."""


class Manager:
    """Shared informers + one work queue and worker thread(s) per controller (kube-controller-manager, small)."""

    def __init__(self, api: client.Client, config: settings.ControllerSettings | None = None,
                 recorder: events.Recorder | None = None) -> None:
        self.client = api
        self.settings = config or settings.ControllerSettings()
        self.recorder = recorder or events.Recorder(api)
        self._informers: dict[tuple[str, str, str, str], Informer] = {}
        self._controllers: dict[str, Controller] = {}
        self._queues: dict[str, WorkQueue] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started = False
        self._stop = threading.Event()

    def informer(self, plural: str, namespace: str = "", *, label_selector: str = "",
                 field_selector: str = "") -> Informer:
        """The shared informer for this resource (and scope); started with the manager (or at once if running)."""
        key = (plural, namespace, label_selector, field_selector)
        with self._lock:
            inf = self._informers.get(key)
            if inf is None:
                inf = self._informers[key] = Informer(self.client, plural, namespace, label_selector=label_selector,
                                                      field_selector=field_selector)
                if self._started:
                    inf.start()
            return inf

    def add(self, controller: Controller, workers: int | None = None) -> None:
        """Register and set up ``controller``; ``workers`` defaults to its ``workers`` attribute, else 1."""
        if workers is None:
            workers = int(getattr(controller, "workers", 1))
        if controller.name in self._controllers:
            raise ValueError(f"controller {controller.name!r} added twice")
        self._controllers[controller.name] = controller
        self._queues[controller.name] = WorkQueue(controller.name, backoff_base=self.settings.requeue_base,
                                                  backoff_max=self.settings.requeue_max)
        setattr(controller, "_kubesim_workers", max(1, workers))  # noqa: B010 - read back in start()
        controller.setup(self)

    def queue(self, controller: Controller | str) -> WorkQueue:
        return self._queues[controller if isinstance(controller, str) else controller.name]

    def enqueue(self, controller: Controller | str, key: str) -> None:
        self.queue(controller).add(key)

    def enqueue_after(self, controller: Controller | str, key: str, seconds: float) -> None:
        self.queue(controller).add_after(key, seconds)

    def controllers(self) -> list[str]:
        return list(self._controllers)

    def start(self, sync_timeout: float | None = None) -> bool:
        """Start informers, wait until every cache synced (or ``stop()``), then start the workers.

        Returns False if the caches did not sync within ``sync_timeout`` (workers are not started).
        """
        with self._lock:
            self._started = True
            informers = list(self._informers.values())
        for inf in informers:
            inf.start()
        deadline = None if sync_timeout is None else time.monotonic() + sync_timeout
        for inf in informers:
            while not inf.wait_synced(0.1):
                if self._stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                    return False
        for name, ctrl in self._controllers.items():
            for n in range(int(getattr(ctrl, "_kubesim_workers", 1))):
                thread = threading.Thread(target=self._work, args=(ctrl, self._queues[name]),
                                          name=f"{name}-worker-{n}", daemon=True)
                thread.start()
                self._threads.append(thread)
        log.info("controllers started: %s", ", ".join(self._controllers) or "(none)")
        return True

    def _work(self, ctrl: Controller, q: WorkQueue) -> None:
        while True:
            key = q.get()
            if key is None:
                return
            try:
                requeue = ctrl.reconcile(key)
            except client.Conflict as exc:
                log.debug("%s %s: conflict, retrying: %s", ctrl.name, key, exc.message)
                q.add_rate_limited(key)
            except client.Unreachable as exc:
                log.info("%s %s: API server unreachable (%s), retrying", ctrl.name, key, exc.message)
                q.add_rate_limited(key)
            except Exception:
                delay = q.add_rate_limited(key)
                log.exception("%s reconcile of %s failed; retrying in %.2fs", ctrl.name, key, delay)
            else:
                q.forget(key)
                if requeue is not None:
                    q.add_after(key, requeue)
            finally:
                q.done(key)

    def stop(self) -> None:
        self._stop.set()
        for q in self._queues.values():
            q.shutdown()
        with self._lock:
            informers = list(self._informers.values())
        for inf in informers:
            inf.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self.recorder.flush(timeout=2)
