"""The ingest adapter contract: options, the context an adapter reads with, and its base class."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curate.config import resolve_config
from curate.errors import InputError
from curate.manifests.ingest.images import WorkerPool


def _check_positive(name: str, value: int | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"IngestConfig.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class IngestConfig:
    """Options every adapter understands (an adapter ignores the ones that do not apply).

    Parameters
    ----------
    column_map
        Rename source columns (or ``.npz`` keys) before anything else: ``{"old": "new"}``.
    embeddings
        An ``.npy`` file of shape (rows, d) aligned with the input rows; written, L2-normalised,
        as the ``embedding`` column.
    embedding_column
        A list column of the source holding precomputed embeddings (becomes ``embedding``).
    workers
        Processes that read, decode and check images; None uses every CPU available.
    split
        A split name for every row, where the source has no splits of its own.
    labels
        For ``numpy``: the ``.npy`` file of labels beside an ``.npy`` file of images.
    class_names
        Class names for integer labels (overrides any the source carries); for string labels,
        the names in index order (default: the sorted distinct labels). A string label not
        in the list is an error.
    batch_size
        Rows per batch read from the source (writes are grouped into ~32 MB row groups).
    rows_per_shard
        Rows per output Parquet shard (directory output).
    verify_images
        Decode image bytes to fill ``width``/``height`` and flag corrupt images in ``error``.
    """

    column_map: Mapping[str, str] = field(default_factory=dict)
    embeddings: Path | None = None
    embedding_column: str | None = None
    workers: int | None = None
    split: str | None = None
    labels: Path | None = None
    class_names: Sequence[str] | None = None
    batch_size: int = 2048
    rows_per_shard: int = 1_000_000
    verify_images: bool = True

    def __post_init__(self) -> None:
        _check_positive("workers", self.workers)
        _check_positive("batch_size", self.batch_size, allow_none=False)
        _check_positive("rows_per_shard", self.rows_per_shard, allow_none=False)
        cmap = dict(self.column_map or {})
        for old, new in cmap.items():
            if not old or not new or not isinstance(old, str) or not isinstance(new, str):
                raise ValueError(
                    f"IngestConfig.column_map: bad entry {old!r} -> {new!r}; use old=new "
                    "with both names non-empty."
                )
        targets = list(cmap.values())
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise ValueError(f"IngestConfig.column_map: several columns renamed to {dup}.")
        object.__setattr__(self, "column_map", cmap)
        for name in ("embeddings", "labels"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.class_names is not None:
            names = [str(n) for n in self.class_names]
            if not names or len(set(names)) != len(names):
                raise ValueError(
                    "IngestConfig.class_names must be a non-empty list of distinct names, "
                    f"got {names!r}"
                )
            object.__setattr__(self, "class_names", tuple(names))
        if self.embeddings is not None and self.embedding_column is not None:
            raise ValueError(
                "IngestConfig: give embeddings (an .npy file) or embedding_column, not both."
            )

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> IngestConfig:
        """Build from keyword options; an unknown name raises a TypeError listing valid ones."""
        return resolve_config(cls, None, options, step="ingest")


@dataclass
class IngestContext:
    """What an adapter reads with: the source, the options, the worker pool, notes for the user."""

    src: Path
    config: IngestConfig
    pool: WorkerPool
    notes: dict[str, int] = field(default_factory=dict)
    #: How string labels were mapped to class indices (run.json ``labels``), if they were.
    labels: dict | None = None

    def note(self, what: str, n: int = 1) -> None:
        """Count something the user should hear about that is not a row error."""
        self.notes[what] = self.notes.get(what, 0) + n


class Adapter:
    """One source format: ``detect`` answers whether a path is in it, ``read`` streams tables.

    Tables from ``read`` carry ``id`` (string, unique) and ``error`` (string, null when the row
    is fine) plus the source's columns; class names ride in the schema metadata. Every table has
    the same schema. ``num_rows`` returns the row count when it is cheap to know in advance.
    """

    name: str = ""

    def detect(self, src: Path) -> bool:
        raise NotImplementedError

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        raise NotImplementedError

    def num_rows(self, ctx: IngestContext) -> int | None:
        return None


def is_glob(src: Path | str) -> bool:
    """Whether ``src`` is a glob pattern rather than a path."""
    return any(c in str(src) for c in "*?[")


def detect_files(src: Path, suffix: str, files: Callable[[Path], list[Path]]) -> bool:
    """``src`` is a ``suffix`` file, a glob of them, or a folder where ``files`` finds some."""
    if is_glob(src):
        return str(src).endswith(suffix)
    if src.is_file():
        return src.suffix == suffix
    return src.is_dir() and bool(files(src))


def missing_path_error(path: Path, what: str = "input") -> InputError:
    return InputError(f"{path}: {what} does not exist; check the path (and the working directory).")
