"""Read ahead in a background thread: Parquet decoding overlaps the consumer's work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class _End:
    """Marks the end of the stream, carrying the producer's exception if it failed."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterable[T], depth: int) -> Iterator[T]:
    """Yield ``items`` while a thread produces up to ``depth`` of them ahead.

    Memory is bounded by ``depth + 2`` items. An exception in the producer is raised in the
    consumer; closing the consumer early stops the producer. ``depth <= 0`` iterates inline.
    """
    if depth <= 0:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_End(exc))
            return
        put(_End())

    worker = threading.Thread(target=produce, name="curate-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        worker.join()
