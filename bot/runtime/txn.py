"""Write transactions of the runtime, taken one at a time on SQLite, triggers first.

SQLite has one writer at a time; a second connection that wants to write waits in SQLite's busy
handler, which sleeps in growing steps (1, 2, 5, 10, 15, 20 ms...). Inside one process we can do
better: an asyncio lock hands the write lock over the moment it is free, and an urgent
transaction (a batch of triggers on its way to the outbox) goes before waiting routine ones
(delivery marks, heartbeats). PostgreSQL needs none of this.

Two ways in:

- `async with writer.tx() as session:` an ORM session, for routine work;
- `await writer.run(fn)` for the hot path: `fn(connection)` is a plain function of SQLAlchemy
  Core statements. On a SQLite file it runs whole, with its commit, in one dedicated thread
  on a blocking connection, so the event loop waits once per transaction instead of once per
  statement hop (a trigger batch commits in about a millisecond instead of four or five).
  Elsewhere it runs inside an async transaction through `run_sync`. Same statements either way.
  Those commits never checkpoint the WAL; the runtime's housekeeping calls `checkpoint`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import checkpoint, sqlite_sync_engine

T = TypeVar("T")


class Writer:
    """Write transactions of one runtime process, serialised on SQLite with triggers first."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = asyncio.Lock() if services.engine.dialect.name == "sqlite" else None
        #: `run`'s blocking engine on a SQLite file (no connection until used) and its thread, made on first use.
        self._sync = sqlite_sync_engine(services.engine)
        self._thread: ThreadPoolExecutor | None = None
        self._urgent = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()
        #: time.perf_counter() when the last transaction committed (before its connection went back to the pool).
        self.committed_at = 0.0

    async def yield_to_urgent(self) -> None:
        """Wait while an urgent transaction is waiting or running (routine work steps aside for triggers)."""
        while self._urgent:
            await self._no_urgent.wait()

    @asynccontextmanager
    async def _turn(self, urgent: bool) -> AsyncIterator[None]:
        """This process's turn to write (SQLite): urgent turns go before routine ones waiting."""
        if self._lock is None:
            yield
            return
        if urgent:
            self._urgent += 1
            self._no_urgent.clear()
        try:
            if not urgent:
                while self._urgent:
                    await self._no_urgent.wait()
            async with self._lock:
                yield
        finally:
            if urgent:
                self._urgent -= 1
                if not self._urgent:
                    self._no_urgent.set()

    @asynccontextmanager
    async def tx(self, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """An ORM session in a write transaction, committed when the block ends."""
        async with self._turn(urgent):
            async with self.services.db() as s:
                async with s.begin():
                    yield s
                self.committed_at = time.perf_counter()

    async def run(self, fn: Callable[[Connection], T], urgent: bool = False) -> T:
        """Run `fn(connection)` in one write transaction and commit; returns what it returned."""
        if self._sync is None:
            async with self.tx(urgent) as s:
                return await s.run_sync(lambda ss: fn(ss.connection()))
        async with self._turn(urgent):
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coach-writer")
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._run_blocking, fn)

    def _run_blocking(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync is not None
        with self._sync.begin() as conn:
            out = fn(conn)
        self.committed_at = time.perf_counter()
        return out

    async def checkpoint(self) -> None:
        """SQLite: fold the WAL into the database, on its own connection and thread (writes go on meanwhile)."""
        if self._sync is not None:
            await asyncio.to_thread(checkpoint, self._sync)

    async def aclose(self) -> None:
        """Release the blocking connection and its thread (the ORM sessions need nothing)."""
        pool, self._thread = self._thread, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._dispose)
            pool.shutdown(wait=True)

    def _dispose(self) -> None:
        if self._sync is not None:
            self._sync.dispose()
