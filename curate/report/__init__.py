"""Reports a person looks at: ``report`` writes one self-contained page, ``serve`` browses a large
manifest over a loopback server; both show the sections a manifest's columns allow."""

from curate.report.build import FOLDER_LIMITS, build_data, report
from curate.report.sections import Limits

__all__ = ["FOLDER_LIMITS", "Limits", "build_data", "report"]
