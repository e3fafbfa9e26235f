"""Label issues: confident learning (cleanlab) on out-of-sample predicted probabilities."""

from curate.pipelines.label_issues.config import METHODS, PREDICTORS, LabelIssuesConfig
from curate.pipelines.label_issues.ranking import Ranking, rank_chunked, rank_in_memory
from curate.pipelines.label_issues.report import format_pairs
from curate.pipelines.label_issues.runner import label_issues
from curate.pipelines.label_issues.streaming import rank_parquet

__all__ = [
    "METHODS",
    "PREDICTORS",
    "LabelIssuesConfig",
    "Ranking",
    "format_pairs",
    "label_issues",
    "rank_chunked",
    "rank_in_memory",
    "rank_parquet",
]
