"""Worker processes for a step's CPU-side stage (:class:`~curate.step.PrepareStage`), and the
ordered, bounded pipeline that keeps them ``depth`` batches ahead of the step."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from curate.step import PrepareStage


def _die_with_parent(init: Callable[[], None] | None) -> None:
    if init is not None:
        init()
    if sys.platform.startswith("linux"):  # die with the parent, even after SIGKILL
        import ctypes
        import signal

        with contextlib.suppress(OSError):  # PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def process_pool(workers: int, init: Callable[[], None] | None = None) -> Executor:
    """``workers`` processes started now (before the caller starts reader or writer threads),
    each calling ``init`` first and dying with this process; one thread when ``workers`` is 0.

    On Linux they are forked (no re-import of the caller's ``__main__``, so scripts need no
    ``if __name__ == "__main__"`` guard); elsewhere they are spawned.
    """
    if workers == 0:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-prepare")
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with native threads
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context(method),
            initializer=_die_with_parent,
            initargs=(init,),
        )
        for f in [pool.submit(int) for _ in range(workers)]:
            f.result()
    return pool


def prepared(
    batches: Iterable[pa.Table], stage: PrepareStage, pool: Executor
) -> Iterator[tuple[pa.Table, Any]]:
    """``(batch, stage.fn(batch))`` in order, with ``stage.depth`` batches submitted ahead."""
    ahead: deque = deque()
    for batch in batches:
        ahead.append((batch, pool.submit(stage.fn, batch)))
        if len(ahead) > stage.depth:
            done, future = ahead.popleft()
            yield done, future.result()
    while ahead:
        done, future = ahead.popleft()
        yield done, future.result()
