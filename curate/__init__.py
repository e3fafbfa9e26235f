"""curate: curate image and image-text datasets and fix their labels, over Parquet manifests."""

__version__ = "0.1.0"

from curate.evaluation.distill_eval import distill_eval
from curate.evaluation.harness import evaluate
from curate.manifests import Manifest, open_manifest, sql, write_manifest
from curate.pipelines.check import check
from curate.pipelines.distill import distill
from curate.pipelines.export import export
from curate.pipelines.label_issues import label_issues
from curate.pipelines.reinforce import reinforce
from curate.pipelines.relabel import relabel
from curate.reporting.build import report

__all__ = [
    "Manifest",
    "__version__",
    "check",
    "distill",
    "distill_eval",
    "evaluate",
    "export",
    "label_issues",
    "open_manifest",
    "reinforce",
    "relabel",
    "report",
    "sql",
    "write_manifest",
]
