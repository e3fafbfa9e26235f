"""``curate export`` options: the format, which rows, and the sizes of what is written."""

from __future__ import annotations

from dataclasses import dataclass

#: The formats ``export`` writes (their writers are in :mod:`.writers`).
FORMATS = ("imagefolder", "webdataset", "parquet")


@dataclass(frozen=True)
class ExportConfig:
    """What to export and how.

    Parameters
    ----------
    format
        ``"parquet"`` (default: every column, vectors as ``list<float32>``, one file when
        ``out`` ends in ``.parquet``), ``"imagefolder"`` (``OUT/<class name>/<id>.<ext>``, as
        torchvision's ImageFolder reads) or ``"webdataset"`` (tar shards of ``KEY.<ext>``,
        ``KEY.cls``, ``KEY.json``, ``KEY.txt``).
    all_rows
        Export every row. By default only the kept rows are: ``keep = true`` where the
        manifest has a ``keep`` column (as ``curate prune`` writes), every row otherwise.
    where
        A DuckDB SQL condition on the manifest's columns (``"split = 'train' AND label < 5"``);
        only rows where it is true are exported (with the ``keep`` rule unless ``all_rows``).
    shard_size
        webdataset: samples per tar shard (img2dataset's default, 10,000).
    batch_size
        Rows read at a time; memory holds about one batch of images.
    """

    format: str = "parquet"
    all_rows: bool = False
    where: str | None = None
    shard_size: int = 10_000
    batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format={self.format!r}: valid formats are {', '.join(FORMATS)}.")
        for name in ("shard_size", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}: must be a positive integer.")
        if self.where is not None and not str(self.where).strip():
            raise ValueError(
                "where: give a SQL condition, e.g. \"split = 'train'\", or leave it out."
            )
