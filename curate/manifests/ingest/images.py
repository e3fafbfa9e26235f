"""Check and measure encoded images, and encode arrays as PNG, in worker processes."""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import numpy as np

#: A probe result: (width, height, error); error is ``"<kind>: <detail>"`` or None.
Probe = tuple[int | None, int | None, str | None]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)


def probe_image(data: bytes | None) -> Probe:
    """Decode ``data`` enough to know its size and that it is whole.

    JPEGs are decoded at reduced scale (DCT draft mode: every byte is still read, so truncation
    shows); PNGs are checked chunk by chunk (CRCs and the end marker); other formats are decoded.
    """
    if data is None:
        return None, None, None
    if len(data) == 0:
        return None, None, "empty_file: 0 bytes"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if im.format == "PNG":
                im.verify()
            else:
                if im.format == "JPEG":
                    im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                im.load()
    except UnidentifiedImageError:
        return None, None, f"not_an_image: not a readable image format ({len(data)} bytes)"
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBomb...
        text = str(exc) or type(exc).__name__
        kind = "truncated_image" if "truncated" in text.lower() else "corrupt_image"
        return None, None, f"{kind}: {text}"
    return width, height, None


def probe_images(images: list[bytes | None]) -> list[Probe]:
    """:func:`probe_image` over a chunk (the unit of work sent to a worker process)."""
    return [probe_image(b) for b in images]


Read = tuple[bytes | None, int | None, int | None, str | None]


def read_and_probe(paths: list[str], *, probe: bool = True) -> list[Read]:
    """Read each file and probe it; an unreadable file gives ``(None, None, None, error)``."""
    out: list[Read] = []
    for p in paths:
        try:
            with open(p, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            out.append((None, None, None, f"unreadable_file: {exc.strerror or exc}"))
            continue
        out.append((data, *probe_image(data)) if probe else (data, None, None, None))
    return out


def read_files(paths: list[str]) -> list[Read]:
    """Read each file without decoding it (``verify_images=False``)."""
    return read_and_probe(paths, probe=False)


def encode_png(images: np.ndarray) -> list[tuple[bytes, int, int]]:
    """Encode uint8 arrays (n, H, W) or (n, H, W, C) with C in 1, 3, 4 as PNG bytes."""
    from PIL import Image

    out = []
    for arr in images:
        a = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
        out.append((buf.getvalue(), a.shape[1], a.shape[0]))
    return out


def default_workers() -> int:
    """Worker processes when none are asked for: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """Ordered, bounded-memory map of a function over chunks, in processes or in-process.

    ``workers=1`` runs in this process (no pickling); more starts a ``ProcessPoolExecutor``
    lazily, on first use, with at most ``2 * workers`` chunks in flight.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self._executor: Executor | None = None

    def _pool(self) -> Executor:
        if self._executor is None:
            # fork (Linux): workers need no ``if __name__ == "__main__"`` guard in the caller's
            # script and start in milliseconds; they only run PIL on bytes they are sent.
            # Elsewhere spawn, which needs that guard, as all multiprocessing there does.
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context(method)
            )
        return self._executor

    def start(self) -> WorkerPool:
        """Start the worker processes now (before this process starts threads of its own)."""
        if self.workers > 1:
            self._pool().submit(int).result()
        return self

    def imap(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> Iterator[Any]:
        """Yield ``fn(chunk)`` for each chunk, in order."""
        if self.workers <= 1:
            yield from map(fn, chunks)
            return
        pool = self._pool()
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(fn, chunk))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def map_list(self, fn: Callable[[list], list], items: list, *, chunk: int = 256) -> list:
        """Apply a chunk function to ``items`` split in chunks; return the joined results."""
        parts = (items[i : i + chunk] for i in range(0, len(items), chunk))
        return [r for part in self.imap(fn, parts) for r in part]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
