"""Memory for the hot loops: glibc malloc settings that keep large buffers in the heap so that
every batch reuses the memory of the one before instead of mapping fresh pages and faulting
them in, and huge-page arrays for large one-off buffers.

By default glibc serves each allocation above a threshold (at most 32 MB) with its own
``mmap`` and returns it with ``munmap`` when freed, so a loop that allocates the same large
tensors every batch (a CNN's activations, a float32 block of vectors) pays a page fault per
4 KB page, every batch: in ``curate embed`` the kernel then used more CPU than the model (see
BENCHMARKS.md, "Kernel time"). Inside :func:`reuse_heap` large blocks come from the heap and
go back to it: ``M_MMAP_MAX = 0`` (no per-block ``mmap``) and ``M_TRIM_THRESHOLD = 1 GiB``
(a free top of the heap larger than that still goes back to the system). On the way out the
defaults come back and ``malloc_trim`` returns the free heap memory, so the process does not
keep the loop's memory afterwards. Set ``CURATE_MALLOC=default`` to leave glibc's settings
alone; elsewhere than glibc (macOS, musl) this is a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import mmap
import os
import threading
from collections.abc import Iterator

import numpy as np

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65_536
KEEP_TRIM_THRESHOLD = 1 << 30

_lock = threading.Lock()
_depth = 0


def _libc():
    if os.environ.get("CURATE_MALLOC", "").lower() == "default":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def reuse_heap() -> Iterator[None]:
    """Serve large allocations from the heap while inside (a context manager or decorator).

    Nested and concurrent uses are counted; the settings return to glibc's defaults when the
    outermost one exits.

    Examples
    --------
    >>> with reuse_heap():
    ...     for batch in batches:
    ...         model(batch)
    """
    global _depth
    with _lock:
        _depth += 1
        libc = _libc() if _depth == 1 else None
        if libc is not None:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            libc = _libc() if _depth == 0 else None
            if libc is not None:
                libc.mallopt(M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)


#: Arrays at least this large get their own transparent-huge-page mapping in :func:`huge_empty`.
HUGE_ARRAY_BYTES = 64 << 20


def huge_empty(shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
    """``np.empty(shape, dtype)``, but a large array is an anonymous mapping advised to use
    transparent huge pages: filling it faults 2 MB pages in, not 4 KB ones (a 512 MB fill
    measured 0.6-3.0 s instead of 5.2-6.5 s on a loaded 2-core VM). Small arrays, and systems
    without ``MADV_HUGEPAGE``, get a plain ``np.empty``."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if nbytes < HUGE_ARRAY_BYTES or advice is None:
        return np.empty(shape, dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(OSError):
        buf.madvise(advice)
    return np.frombuffer(buf, dtype).reshape(shape)  # the array keeps the mapping alive
