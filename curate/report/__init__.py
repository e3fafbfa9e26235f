"""Reports a person looks at: ``report`` writes one self-contained page, ``serve`` browses a large
manifest over a loopback server; both show the sections a manifest's columns allow.

``curate.report(...)`` is :func:`curate.report.report` itself: this module is callable, so the
package name and the function a user calls are the same word.
"""

import sys
import types

from curate.report.build import FOLDER_LIMITS, build_data, report
from curate.report.sections import Limits

__all__ = ["FOLDER_LIMITS", "Limits", "build_data", "report"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
