"""What happens, for whoever watches (WatchEvents, `netctl events`).

Publishing never waits: each watcher has a bounded queue on its asyncio
loop, and one that falls behind by more than its capacity is dropped, told
so, and must watch again."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

KINDS = ("attached", "detached", "released", "repaired", "network_created", "network_deleted")
CAPACITY = 1024


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    kind: str
    network: str = ""
    container_id: str = ""
    ip_address: str = ""
    detail: str = ""
    owner: str = ""
    time: str = field(default_factory=now)


@dataclass(frozen=True)
class Filter:
    network: str = ""
    container_id: str = ""
    kinds: frozenset[str] = frozenset()

    def wants(self, event: Event) -> bool:
        return ((not self.network or event.network == self.network)
                and (not self.container_id or event.container_id == self.container_id)
                and (not self.kinds or event.kind in self.kinds))


class Watcher:
    def __init__(self, wanted: Filter, loop: asyncio.AbstractEventLoop, capacity: int) -> None:
        self.wanted, self.loop = wanted, loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(capacity)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """On the watcher's loop: queue the event, or give up on a watcher that fell behind."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()  # room for the word that it is over
            self.queue.put_nowait(None)


class Bus:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        with self._lock:
            watchers = [w for w in self._watchers if not w.overflowed]
            self._watchers = watchers
        for w in watchers:
            if w.wanted.wants(event):
                w.loop.call_soon_threadsafe(w.offer, event)

    def watch(self, wanted: Filter) -> Watcher:
        """A watcher on the running loop (a streaming call's)."""
        watcher = Watcher(wanted, asyncio.get_running_loop(), self.capacity)
        with self._lock:
            self._watchers.append(watcher)
        return watcher

    def forget(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)
