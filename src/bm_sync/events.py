"""Where a watcher's hints come from: inotify on Linux, watchfiles elsewhere.

A source collects root-relative paths that may have changed and says when history was lost
(the watcher then scans the whole tree). It never says *what* happened to a path: events are
hints, the detector decides. Both sources answer a cookie: a file created in the cookie folder
and seen come back through the event stream, which proves every earlier event was collected.

`open_source` picks one; None means poll (a network or FUSE file system, a reached watch
limit, no event backend), which the watcher does with its own full scans.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bm_sync.fstype import events_unreliable
from bm_sync.inotify import InotifyUnavailable, InotifyWatch

COOKIE_DIR = b".basic-memory/cookies"
SKIP_TOP = frozenset({b".git", b".basic-memory"})

# Testing and support knobs (documented in docs/cli.md): poll instead of using file events;
# pick the backend (`inotify`, `watchfiles`, `poll`), e.g. watchfiles on Linux, as CI tests it.
FORCE_POLL_ENV = "BM_WATCH_FORCE_POLL"
BACKEND_ENV = "BM_WATCH_BACKEND"
BACKENDS = ("inotify", "watchfiles", "poll")


class EventSource(Protocol):
    @property
    def root_gone(self) -> bool:
        """The watched folder itself was moved or deleted."""
        ...

    @property
    def limit_reached(self) -> bool:
        """Events cannot be trusted from now on (the watch limit): poll instead."""
        ...

    def start(self, wake: Callable[[], None]) -> None:
        """Arm the watches; `wake` is called (in the event loop) whenever there is news."""
        ...

    def take(self) -> tuple[set[bytes], str | None]:
        """The paths collected since the last call, and a loss of history if there was one."""
        ...

    async def cookie(self, timeout: float) -> bool:
        """Whether a cookie written now comes back through the events within `timeout`."""
        ...

    def close(self) -> None: ...


def backend_problem() -> str | None:
    """What is wrong with `BM_WATCH_BACKEND` (one line), or None."""
    chosen = os.environ.get(BACKEND_ENV)
    if chosen and chosen not in BACKENDS:
        return f"{BACKEND_ENV}={chosen!r} is not one of {', '.join(BACKENDS)}"
    return None


def polling_reason(root: Path) -> str | None:
    """Why `root` must be polled (one line), or None when file events can be trusted."""
    if os.environ.get(FORCE_POLL_ENV):
        return f"{FORCE_POLL_ENV} is set"
    if os.environ.get(BACKEND_ENV) == "poll":
        return f"{BACKEND_ENV} is poll"
    problem = backend_problem()
    if problem is not None:  # the CLI refuses it first; the library polls rather than die
        return problem
    kind = events_unreliable(root)
    if kind is not None:
        return f"{root} is on {kind}, which does not deliver file events"
    return None


def open_source(root: Path, *, include_hidden: bool = False,
                max_pending: int = 1000) -> tuple[EventSource | None, str | None]:
    """The event source for `root`, or (None, why) when it has to be polled."""
    reason = polling_reason(root)
    if reason is not None:
        return None, reason
    backend = os.environ.get(BACKEND_ENV) or ("inotify" if sys.platform.startswith("linux")
                                              else "watchfiles")
    if backend == "inotify":
        try:
            return InotifySource(root, include_hidden, max_pending), None
        except InotifyUnavailable as error:
            return None, str(error)
    try:
        return WatchfilesSource(root), None
    except ImportError:
        return None, "watchfiles is not installed"


class _Cookies:
    """Cookie files in `<root>/.basic-memory/cookies`, named `<pid>-<n>`, and their waiters."""

    def __init__(self, root: bytes) -> None:
        self.folder = os.path.join(root, COOKIE_DIR)
        self._numbers = itertools.count(1)
        self._waiting: dict[bytes, asyncio.Future[None]] = {}

    async def round_trip(self, timeout: float) -> bool:
        name = f"{os.getpid()}-{next(self._numbers)}".encode()
        seen = asyncio.get_running_loop().create_future()
        self._waiting[name] = seen
        path = os.path.join(self.folder, name)
        try:
            os.makedirs(self.folder, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(path)
            await asyncio.wait_for(seen, timeout)
            return True
        except (OSError, TimeoutError):
            return False
        finally:
            self._waiting.pop(name, None)

    def seen(self, names: set[bytes]) -> None:
        for name in names:
            waiter = self._waiting.get(name)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)


class InotifySource:
    """`inotify.InotifyWatch`, read by its thread, handed to the event loop."""

    def __init__(self, root: Path, include_hidden: bool, max_pending: int) -> None:
        self.root = os.fsencode(root)
        self._cookies = _Cookies(self.root)
        self._wake: Callable[[], None] = lambda: None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch = InotifyWatch(self.root, notify=self._from_thread, cookie_dir=COOKIE_DIR,
                                   skip_top=SKIP_TOP, include_hidden=include_hidden,
                                   max_pending=max_pending)

    @property
    def root_gone(self) -> bool:
        return self._watch.root_gone

    @property
    def limit_reached(self) -> bool:
        return self._watch.limit_reached

    def start(self, wake: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = wake
        self._watch.start()

    def _from_thread(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._news)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def _news(self) -> None:
        with self._watch.lock:
            names, self._watch.cookies_seen = self._watch.cookies_seen, set()
        self._cookies.seen(names)
        self._wake()

    def take(self) -> tuple[set[bytes], str | None]:
        return self._watch.take()

    async def cookie(self, timeout: float) -> bool:
        return await self._cookies.round_trip(timeout)

    def close(self) -> None:
        self._watch.close()


class WatchfilesSource:
    """watchfiles (Rust notify) for macOS and Windows. It reports no overflow, so the watcher's
    batch-size rule, heartbeat and periodic rescan are all the cover there is."""

    root_gone = False
    limit_reached = False

    def __init__(self, root: Path) -> None:
        import watchfiles  # type: ignore[import-not-found, unused-ignore]  # noqa: F401

        self.root = root
        self._cookies = _Cookies(os.fsencode(root))
        self._pending: set[bytes] = set()
        self._lost: str | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, wake: Callable[[], None]) -> None:
        os.makedirs(self._cookies.folder, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._read(wake))

    async def _read(self, wake: Callable[[], None]) -> None:
        import watchfiles  # type: ignore[import-not-found, unused-ignore]

        prefix = os.fsencode(self.root) + b"/"
        cookie_prefix = COOKIE_DIR + b"/"
        try:
            async for changes in watchfiles.awatch(self.root, watch_filter=None, debounce=1600,
                                                   step=50, stop_event=self._stop):
                cookies: set[bytes] = set()
                for _kind, changed in changes:
                    path = os.fsencode(changed)
                    relative = path[len(prefix):] if path.startswith(prefix) else b""
                    if relative.startswith(cookie_prefix):
                        cookies.add(relative[len(cookie_prefix):])
                    elif relative and relative.split(b"/", 1)[0] not in SKIP_TOP:
                        self._pending.add(relative)
                    elif not relative:
                        self.root_gone = not os.path.isdir(self.root)
                self._cookies.seen(cookies)
                wake()
        except Exception as error:  # the watcher rescans and goes on polling
            self._lost = f"watchfiles stopped: {type(error).__name__}: {error}"
            self.limit_reached = True
            wake()

    def take(self) -> tuple[set[bytes], str | None]:
        paths, self._pending = self._pending, set()
        lost, self._lost = self._lost, None
        return paths, lost

    async def cookie(self, timeout: float) -> bool:
        return await self._cookies.round_trip(timeout)

    def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
