"""Reports a person looks at: ``report`` writes one self-contained page, ``serve`` browses a large
manifest over a loopback server; both show the sections a manifest's columns allow.

The step a user calls is ``curate.report`` (:func:`curate.reporting.build.report`)."""

from curate.reporting.build import FOLDER_LIMITS, ReportConfig, build_data, report
from curate.reporting.sections import Limits

__all__ = ["FOLDER_LIMITS", "Limits", "ReportConfig", "build_data", "report"]
