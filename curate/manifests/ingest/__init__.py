"""Ingest: turn image folders, Parquet, HF datasets, WebDataset tars or arrays into manifests."""

from curate.manifests.ingest.base import Adapter, IngestConfig, IngestContext
from curate.manifests.ingest.core import failure_counts, get_adapter, ingest
from curate.manifests.ingest.detect import ADAPTERS, detect_format

__all__ = [
    "ADAPTERS",
    "Adapter",
    "IngestConfig",
    "IngestContext",
    "detect_format",
    "failure_counts",
    "get_adapter",
    "ingest",
]
