"""A pool of worker processes that survives its workers: started with forkserver, a crashed one replaced, a stuck one ended.

Workers are started by a fork server (`spawn` where there is none), never by `fork` from a
process that runs an event loop and threads. A worker that dies (killed, out of memory) breaks
the whole standard pool; `run` then replaces it and reports `WorkerLost`, so the caller decides
whether the work is tried again. A call that outlives its `timeout` ends the pool's workers (a
stuck one cannot be reached any other way) and raises `TimeoutError`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")


class WorkerLost(RuntimeError):
    """The worker running a call died before it answered."""


def start_method(wanted: str | None = None) -> str:
    """`wanted` when it is available and not `fork`, else forkserver where it exists, else spawn."""
    available = multiprocessing.get_all_start_methods()
    if wanted in available and wanted != "fork":
        return wanted
    return "forkserver" if "forkserver" in available and sys.platform != "win32" else "spawn"


class WorkerPool:
    """`workers` processes, started on first use; `run(fn, *args)` awaits `fn(*args)` in one of them."""

    def __init__(
        self,
        workers: int,
        *,
        method: str | None = None,
        preload: Sequence[str] = (),
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_tasks_per_child: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.workers = workers
        self.method = start_method(method)
        self.preload = list(preload)
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks_per_child = max_tasks_per_child
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: Pools replaced after a worker died or a call got stuck.
        self.replaced = 0

    def executor(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if self._executor is None:
                ctx = multiprocessing.get_context(self.method)
                if self.method == "forkserver" and self.preload:
                    # the fork server imports these once; every worker forks from it warm
                    ctx.set_forkserver_preload(self.preload)
                self._executor = cf.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=ctx,
                    initializer=self.initializer,
                    initargs=self.initargs,
                    max_tasks_per_child=self.max_tasks_per_child,
                )
            return self._executor

    def start(self) -> None:
        """Start every worker now and wait until each is ready (blocking: call it from a thread).

        The first start of a fork server waits for its imports; doing it here keeps that wait off the
        first request (and off the event loop).
        """
        pool = self.executor()
        for f in [pool.submit(_ready) for _ in range(self.workers)]:
            f.result()

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """`fn(*args)` in a worker process; WorkerLost when the worker died, TimeoutError after `timeout` seconds."""
        pool = self.executor()
        try:
            future = pool.submit(fn, *args)
        except BrokenProcessPool:
            self.reset(pool)
            raise WorkerLost("a worker process died") from None
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except BrokenProcessPool:
            self.reset(pool)
            raise WorkerLost("a worker process died") from None
        except TimeoutError:
            self.reset(pool, kill=True)
            raise

    def reset(self, broken: cf.ProcessPoolExecutor, *, kill: bool = False) -> None:
        """Drop `broken` so the next call starts fresh workers; `kill` also ends its worker processes."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
            self.replaced += 1
        if kill:
            terminate = getattr(broken, "terminate_workers", None)  # Python 3.14+
            if terminate is not None:
                terminate()
                return
            for proc in list(getattr(broken, "_processes", {}).values()):
                proc.terminate()
        broken.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """The worker processes' ids (for operators and tests)."""
        ex = self._executor
        return [p.pid for p in getattr(ex, "_processes", {}).values() if p.pid] if ex is not None else []

    def close(self) -> None:
        with self._lock:
            self._closed = True
            ex, self._executor = self._executor, None
        if ex is not None:
            ex.shutdown(wait=False, cancel_futures=True)


def _ready() -> bool:
    return True
