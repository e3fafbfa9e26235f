"""Rows spilled to a scratch directory partitioned by a key (a cluster), read one part at a time.

A fit whose work is per group (SemDeDup and DBP per k-means cluster) cannot hold the pool's
vectors in one process. Each work item (a range of rows) instead writes one **run**: its rows
sorted by key, with an index of where each key's rows start, as one binary file of sections
(fixed-width numpy columns and Arrow-style strings) and a JSON header written last, so a run
that exists is whole. Reading part ``p`` concatenates its slice of every run, in run order
(so rows keep manifest order inside a part), with ``os.pread``: memory is one part, or one
block of a part, never the pool.

Runs also carry row-order sections (per-row codes of the range) that are not partitioned.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

HEADER = ".json"
DATA = ".bin"


@dataclass(frozen=True)
class Section:
    offset: int
    nbytes: int
    dtype: str
    shape: tuple[int, ...]  # per-row shape: () for scalars, (d,) for vectors


def _run_name(run: int) -> str:
    return f"run-{run:06d}"


class SpillWriter:
    """Builds one run file: sections are appended as they come, the header is written last."""

    def __init__(self, root: Path, run: int) -> None:
        self.root, self.run = root, run
        self._tmp = root / f".{_run_name(run)}{DATA}.tmp"
        self._f = open(self._tmp, "wb")  # noqa: SIM115 (closed in finish/abort)
        self.sections: dict[str, Section] = {}

    def add(self, name: str, values: np.ndarray) -> None:
        """A fixed-width section (scalars or rows of vectors), written as raw bytes."""
        arr = np.ascontiguousarray(values)
        off = self._f.tell()
        for i in range(0, len(arr), 1 << 15):  # pieces: a sorted copy never doubles memory
            self._f.write(arr[i : i + (1 << 15)].tobytes())
        self.sections[name] = Section(off, self._f.tell() - off, arr.dtype.str, arr.shape[1:])

    def add_rows(self, name: str, values: np.ndarray, order: np.ndarray) -> None:
        """``values[order]`` as a section, gathered piece by piece (no full sorted copy)."""
        off = self._f.tell()
        for i in range(0, len(order), 1 << 15):
            self._f.write(np.ascontiguousarray(values[order[i : i + (1 << 15)]]).tobytes())
        self.sections[name] = Section(
            off, self._f.tell() - off, values.dtype.str, tuple(values.shape[1:])
        )

    def add_strings(self, name: str, values: pa.Array, order: np.ndarray | None = None) -> None:
        """A string column (Arrow large_string buffers: int64 offsets, then the bytes)."""
        arr = values if order is None else values.take(pa.array(order))
        arr = arr.cast(pa.large_string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        bufs = arr.buffers()
        offsets = np.frombuffer(bufs[1], np.int64, len(arr) + 1, arr.offset * 8)
        base = int(offsets[0])
        self.add(f"{name}.offsets", offsets - base)
        data = bufs[2]
        raw = np.frombuffer(data, np.uint8)[base : int(offsets[-1])] if data else np.zeros(0)
        self.add(f"{name}.data", raw.astype(np.uint8, copy=False))

    def finish(self, meta: dict) -> None:
        """Close the data file and publish the run: data renamed, then the header."""
        self._f.close()  # no fsync: a rename is atomic against kill -9, as the engine's shards
        os.replace(self._tmp, self.root / f"{_run_name(self.run)}{DATA}")
        sections = {
            k: [v.offset, v.nbytes, v.dtype, list(v.shape)] for k, v in self.sections.items()
        }
        header = {"meta": meta, "sections": sections}
        tmp = self.root / f".{_run_name(self.run)}{HEADER}.tmp"
        tmp.write_text(json.dumps(header))
        os.replace(tmp, self.root / f"{_run_name(self.run)}{HEADER}")

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)


def write_run(
    root: Path,
    run: int,
    *,
    keys: np.ndarray,
    parts: int,
    columns: dict[str, np.ndarray],
    strings: dict[str, pa.Array] | None = None,
    row_order: dict[str, np.ndarray] | None = None,
    meta: dict | None = None,
) -> np.ndarray:
    """Write run ``run``: ``columns`` and ``strings`` sorted by ``keys`` (stable), with the
    part index; ``row_order`` sections as given. Returns the rows per part."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=parts).astype(np.int64)
    w = SpillWriter(root, run)
    try:
        w.add("index", np.r_[0, np.cumsum(counts)].astype(np.int64))
        for name, values in columns.items():
            w.add_rows(name, values, order)
        for name, values in (strings or {}).items():
            w.add_strings(name, values, order)
        for name, values in (row_order or {}).items():
            w.add(name, values)
        w.finish(meta or {})
    except BaseException:
        w.abort()
        raise
    return counts


class Spill:
    """The runs under ``root``: which exist, what each holds, and reads of one part.

    Parameters
    ----------
    root
        The directory the runs were written to.
    parts
        How many keys (clusters) the runs are partitioned by.
    """

    def __init__(self, root: str | os.PathLike, parts: int) -> None:
        self.root, self.parts = Path(root), parts
        self._headers: dict[int, dict] = {}
        self._index: np.ndarray | None = None
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    # -- what exists ---------------------------------------------------------------------------
    def done(self, run: int) -> bool:
        return (self.root / f"{_run_name(run)}{HEADER}").exists()

    def runs(self) -> list[int]:
        return sorted(int(p.name[4:10]) for p in self.root.glob(f"run-*{HEADER}"))

    def header(self, run: int) -> dict:
        if run not in self._headers:
            self._headers[run] = json.loads((self.root / f"{_run_name(run)}{HEADER}").read_text())
        return self._headers[run]

    def index(self) -> np.ndarray:
        """(runs, parts + 1) start offsets of each part in each run."""
        if self._index is None:
            runs = self.runs()
            self._index = (
                np.stack([self.section(r, "index") for r in runs])
                if runs
                else (np.zeros((0, self.parts + 1), np.int64))
            )
        return self._index

    def sizes(self) -> np.ndarray:
        """Rows per part over all runs."""
        idx = self.index()
        return (idx[:, 1:] - idx[:, :-1]).sum(axis=0)

    # -- reading -------------------------------------------------------------------------------
    def _fd(self, run: int) -> int:
        with self._lock:
            if run not in self._fds:
                self._fds[run] = os.open(self.root / f"{_run_name(run)}{DATA}", os.O_RDONLY)
            return self._fds[run]

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def _read(self, run: int, name: str, lo: int, hi: int) -> np.ndarray:
        off, _, dtype, shape = self.header(run)["sections"][name]
        dt = np.dtype(dtype)
        width = dt.itemsize * int(np.prod(shape, dtype=np.int64))
        raw = os.pread(self._fd(run), (hi - lo) * width, off + lo * width)
        if len(raw) != (hi - lo) * width:
            raise OSError(f"{self.root}: run {run} section {name!r} is cut short")
        return np.frombuffer(raw, dt).reshape((hi - lo, *shape))

    def section(self, run: int, name: str) -> np.ndarray:
        """A whole section of one run (row-order sections: the range's per-row values)."""
        _, nbytes, dtype, shape = self.header(run)["sections"][name]
        width = np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.int64))
        return self._read(run, name, 0, nbytes // width if width else 0)

    def _slices(self, part: int, lo: int, hi: int) -> Iterable[tuple[int, int, int]]:
        """(run, start, stop) of members ``lo:hi`` of ``part`` (members numbered over runs)."""
        idx = self.index()
        runs = self.runs()
        seen = 0
        for j, run in enumerate(runs):
            a, b = int(idx[j, part]), int(idx[j, part + 1])
            n = b - a
            s0, s1 = max(lo, seen), min(hi, seen + n)
            if s1 > s0:
                yield run, a + s0 - seen, a + s1 - seen
            seen += n
            if seen >= hi:
                break

    def read(self, part: int, name: str, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Members ``lo:hi`` (default all) of ``part`` from column ``name``, in run order."""
        hi = int(self.sizes()[part]) if hi is None else hi
        pieces = [self._read(r, name, a, b) for r, a, b in self._slices(part, lo, hi)]
        if pieces:
            return np.concatenate(pieces)
        _, _, dtype, shape = self.header(self.runs()[0])["sections"][name]
        return np.zeros((0, *shape), np.dtype(dtype))

    def read_strings(self, part: int, name: str, lo: int = 0, hi: int | None = None) -> pa.Array:
        """Members ``lo:hi`` of ``part`` from string column ``name``."""
        hi = int(self.sizes()[part]) if hi is None else hi
        chunks = []
        for r, a, b in self._slices(part, lo, hi):
            offs = self._read(r, f"{name}.offsets", a, b + 1)
            data = self._read(r, f"{name}.data", int(offs[0]), int(offs[-1]))
            chunks.append(
                pa.LargeStringArray.from_buffers(
                    b - a, pa.py_buffer(offs - offs[0]), pa.py_buffer(data)
                )
            )
        return pa.concat_arrays(chunks) if chunks else pa.array([], pa.large_string())
