"""curate: curate image and image-text datasets and fix their labels, over Parquet manifests.

Every step has one shape, ``curate.<verb>(manifest, out=None, *, config=None, engine="local",
ray_address=None, progress="auto", overwrite=False, **options)``, where ``options`` are the
fields of the step's config dataclass; an omitted ``out`` is written beside the input
(``NAME-<verb>ed``).
"""

__version__ = "0.1.0"


from curate import _threads as _threads  # first: OpenMP's wait policy, before torch loads
from curate.arrays import find_label_issues, soft_labels
from curate.evaluation.distill_eval import distill_eval
from curate.evaluation.harness import evaluate
from curate.manifests import Manifest, open_manifest, sql, write_manifest
from curate.manifests.ingest import ingest
from curate.pipelines.check import check
from curate.pipelines.cluster import cluster
from curate.pipelines.distill import distill
from curate.pipelines.embed import embed
from curate.pipelines.export import export
from curate.pipelines.label_issues import label_issues
from curate.pipelines.prune import prune
from curate.pipelines.reinforce import reinforce
from curate.pipelines.relabel import relabel
from curate.pipelines.relabel.mistakes import mistakes
from curate.reporting.build import report
from curate.reporting.serve import serve

__all__ = [
    "Manifest",
    "__version__",
    "check",
    "cluster",
    "distill",
    "distill_eval",
    "embed",
    "evaluate",
    "export",
    "find_label_issues",
    "ingest",
    "label_issues",
    "mistakes",
    "open_manifest",
    "prune",
    "reinforce",
    "relabel",
    "report",
    "serve",
    "soft_labels",
    "sql",
    "write_manifest",
]
