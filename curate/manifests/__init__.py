"""Manifests: the Arrow/Parquet tables every curate step reads and writes."""

from curate.manifests.catalog import connect, sql
from curate.manifests.io import Manifest, ManifestWriter, open_manifest, write_manifest
from curate.manifests.runinfo import make_run_info, read_run_json

__all__ = [
    "Manifest",
    "ManifestWriter",
    "connect",
    "make_run_info",
    "open_manifest",
    "read_run_json",
    "sql",
    "write_manifest",
]
