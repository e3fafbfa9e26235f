"""curate: curate image and image-text datasets and fix their labels, over Parquet manifests."""

__version__ = "0.1.0"

from curate.evaluate.distill_eval import distill_eval
from curate.manifests import Manifest, open_manifest, sql, write_manifest
from curate.pipelines.distill import distill
from curate.pipelines.label_issues import label_issues

__all__ = [
    "Manifest",
    "__version__",
    "distill",
    "distill_eval",
    "label_issues",
    "open_manifest",
    "sql",
    "write_manifest",
]
