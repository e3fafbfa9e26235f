"""curate: curate image and image-text datasets and fix their labels, over Parquet manifests."""

__version__ = "0.1.0"

from curate.manifests import Manifest, open_manifest, sql, write_manifest

__all__ = ["Manifest", "__version__", "open_manifest", "sql", "write_manifest"]
