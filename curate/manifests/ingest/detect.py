"""The registry of ingest formats and the auto-detection of a source's format."""

from __future__ import annotations

from pathlib import Path

from curate.errors import InputError
from curate.manifests.ingest.arrays import NumpyAdapter
from curate.manifests.ingest.base import Adapter, is_glob, missing_path_error
from curate.manifests.ingest.hf import HFAdapter
from curate.manifests.ingest.imagefolder import ImageFolderAdapter
from curate.manifests.ingest.parquet import ParquetAdapter
from curate.manifests.ingest.webdataset import WebDatasetAdapter

#: Format name -> adapter, in detection order (the first whose ``detect`` says yes wins).
ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        HFAdapter(),
        ParquetAdapter(),
        WebDatasetAdapter(),
        NumpyAdapter(),
        ImageFolderAdapter(),
    )
}


def detect_format(src: str | Path) -> str:
    """Name the format of ``src``; raise :class:`InputError` (listing formats) if unknown."""
    src = Path(src)
    if not src.exists() and not is_glob(src):
        raise missing_path_error(src)
    if src.is_dir() and not any(src.iterdir()):
        raise InputError(f"{src}: the input folder is empty; nothing to ingest.")
    for name, adapter in ADAPTERS.items():
        if adapter.detect(src):
            return name
    raise InputError(
        f"{src}: cannot tell its format. Expected an ImageFolder tree (class_name/image.jpg), "
        "a .parquet file or folder, a save_to_disk Hugging Face dataset, .tar WebDataset shards "
        "or .npz/.npy arrays; pass --format with one of "
        f"{', '.join(sorted(ADAPTERS))} if it is one of them."
    )
