"""Write transactions of the runtime, taken one at a time on SQLite, triggers first.

SQLite has one writer at a time; a second connection that wants to write waits in SQLite's busy
handler, which sleeps in growing steps (1, 2, 5, 10, 15, 20 ms...). Inside one process we can do
better: an asyncio lock hands the write lock over the moment it is free, and an urgent
transaction (a batch of triggers on its way to the outbox) goes before waiting routine ones
(delivery marks, heartbeats). PostgreSQL needs none of this.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


class Writer:
    """`async with writer.tx() as session:` — a write transaction, serialised within this process on SQLite."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self._lock = asyncio.Lock() if services.engine.dialect.name == "sqlite" else None
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
    async def tx(self, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        if self._lock is None:
            async with self.services.db() as s:
                async with s.begin():
                    yield s
                self.committed_at = time.perf_counter()
            return
        if urgent:
            self._urgent += 1
            self._no_urgent.clear()
        try:
            if not urgent:
                while self._urgent:
                    await self._no_urgent.wait()
            async with self._lock:
                async with self.services.db() as s:
                    async with s.begin():
                        yield s
                    self.committed_at = time.perf_counter()
        finally:
            if urgent:
                self._urgent -= 1
                if not self._urgent:
                    self._no_urgent.set()
