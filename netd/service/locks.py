"""One call at a time per container id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """Another call holds the container id's lock (raised only when told not to wait)."""


class KeyedLocks:
    """A lock per key, there while a call holds or waits for it.

    Not a fixed set of locks shared by hashing (stripes): a detach holds its
    id's lock while its veth goes (~24-40 ms), and with stripes an attach of
    an unrelated id sharing the stripe waited that long. Under churn (4
    callers detaching and attaching) attach p99 was 40 ms with 64 stripes,
    16 ms with a lock per id."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # key → [lock, holders and waiters]

    @contextmanager
    def hold(self, key: str, wait: bool = True) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            if not entry[0].acquire(blocking=wait):
                raise Busy(key)
            try:
                yield
            finally:
                entry[0].release()
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
