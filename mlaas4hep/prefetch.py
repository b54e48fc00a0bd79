"""Run an iterator ahead in a background thread, so reading overlaps with what consumes it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    """An exception raised by the producer, carried to the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc


class Prefetched(Generic[T]):
    """``items``, produced by a daemon thread at most ``depth`` items ahead, from the moment
    this is made (the first item is on its way before anyone asks for it).

    An exception raised while producing is raised here, at the item where it happened.
    :meth:`close` (also at the end, on an error, or when dropped) stops the thread after
    the item it is producing.
    """

    def __init__(self, items: Iterable[T], depth: int = 1, name: str = "prefetch"):
        self._ready: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items,), name=name,
                                        daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            self._put(_Failed(exc))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._stop.is_set():
            raise StopIteration
        item = self._ready.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failed):
            self.close()
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the thread (after the item it is producing) and wait for it."""
        self._stop.set()
        thread = getattr(self, "_thread", None)  # None: __init__ failed before it
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __del__(self) -> None:
        self.close()


def prefetched(items: Iterable[T], depth: int = 1, name: str = "prefetch") -> Prefetched[T]:
    """``items`` read ahead by a background thread that starts now (see :class:`Prefetched`)."""
    return Prefetched(items, depth, name)
