"""Fixed evaluation protocols: one model per curated subset, against random at equal budget.

``curate.evaluate(...)`` is :func:`curate.evaluate.harness.evaluate` itself: this module is
callable (as ``curate.report`` is), so the package name and the function are the same word.
"""

import sys
import types

from curate.evaluate.config import EvaluateConfig
from curate.evaluate.harness import EvaluateResult, evaluate

__all__ = ["EvaluateConfig", "EvaluateResult", "evaluate"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
