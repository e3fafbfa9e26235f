"""``check``: the health pass before pruning or relabelling: exact and perceptual duplicates,
embedding near-duplicates, train/test leakage (and leakage against another manifest),
outliers and unusable images, each a score and a flag with its reason, every row kept."""

from curate.pipelines.check.config import ISSUE_NAMES, ISSUES, CheckConfig, parse_issues
from curate.pipelines.check.links import CHECK_ISSUES, CheckLinks
from curate.pipelines.check.pixel_step import PixelChecks
from curate.pipelines.check.runner import check
from curate.pipelines.check.summary import issues_found, summarize

__all__ = [
    "CHECK_ISSUES",
    "ISSUES",
    "ISSUE_NAMES",
    "CheckConfig",
    "CheckLinks",
    "PixelChecks",
    "check",
    "issues_found",
    "parse_issues",
    "summarize",
]
