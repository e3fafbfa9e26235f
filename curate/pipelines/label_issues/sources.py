"""Where user-supplied predicted probabilities come from: arrays, .npy files, Parquet columns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import InputError
from curate.models.features import list_to_numpy

DEFAULT_COLUMN = "pred_probs"


class PredProbsSource:
    """Rows of ``pred_probs`` read in chunks, so arrays larger than memory can be scored.

    Parameters
    ----------
    spec
        A numpy array, a ``.npy`` path (memory-mapped), or a Parquet file / manifest directory
        with a list column: ``path`` (column ``pred_probs``) or ``path:column``.
    """

    def __init__(self, spec: np.ndarray | str | os.PathLike) -> None:
        self.array: np.ndarray | None = None
        self.manifest = None
        self.column = DEFAULT_COLUMN
        if isinstance(spec, np.ndarray):
            self.array, self.name = spec, "pred_probs"
            return
        path, column = _split_column(str(spec))
        self.name = str(spec)
        if path.suffix == ".npy":
            try:
                self.array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: not a readable .npy array ({exc}).") from exc
            return
        from curate.manifests.io import open_manifest

        self.manifest = open_manifest(path)
        self.column = column or DEFAULT_COLUMN
        if self.column not in self.manifest.schema.names:
            raise InputError(
                f"{path}: no column {self.column!r} of predicted probabilities; it has "
                f"{self.manifest.schema.names}. Name one as {path}:COLUMN."
            )
        t = self.manifest.schema.field(self.column).type
        if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t)):
            raise InputError(f"{path}: column {self.column!r} must be a list of floats, not {t}.")

    @property
    def shape(self) -> tuple[int, ...]:
        if self.array is not None:
            return tuple(self.array.shape)
        t = self.manifest.schema.field(self.column).type
        if pa.types.is_fixed_size_list(t):
            return (self.manifest.num_rows, t.list_size)
        first = next(self.manifest.iter_batches([self.column], batch_size=1), None)
        width = 0 if first is None or first.num_rows == 0 else len(first.column(0)[0])
        return (self.manifest.num_rows, width)

    @property
    def nbytes(self) -> int:
        n, k = self.shape
        return n * k * (self.array.dtype.itemsize if self.array is not None else 4)

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Yield consecutive row blocks of at most ``rows`` rows."""
        if self.array is not None:
            for start in range(0, self.array.shape[0], rows):
                yield np.asarray(self.array[start : start + rows])
            return
        k = self.shape[1]
        for batch in self.manifest.iter_batches([self.column], batch_size=rows):
            yield list_to_numpy(batch.column(0), k)

    def load(self) -> np.ndarray:
        """The whole array in memory (for cleanlab's in-memory methods)."""
        if self.array is not None:
            return np.asarray(self.array)
        return np.concatenate(list(self.iter_chunks(1 << 16)))


def _split_column(spec: str) -> tuple[Path, str | None]:
    """``'preds.parquet:probs'`` -> (path, 'probs'); a plain existing path -> (path, None)."""
    if os.path.exists(spec):
        return Path(spec), None
    head, sep, tail = spec.rpartition(":")
    if sep and head and "/" not in tail and os.path.exists(head):
        return Path(head), tail
    raise InputError(f"{spec}: no such file (pass a .npy file, or a Parquet path[:column]).")
