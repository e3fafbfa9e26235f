"""cleanlab, imported without its import-time side effect on the process's warnings.

cleanlab 2.9's ``datalab/internal/spurious_correlation.py`` runs
``warnings.filterwarnings("ignore")`` when it is imported (and ``import cleanlab`` imports it),
which silences every warning of the process from then on: a ``WeakTeacherWarning`` raised
after the first cleanlab import was never shown. Importing inside ``catch_warnings`` restores
the filters on the way out.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType


def import_cleanlab(module: str = "cleanlab") -> ModuleType:
    """``importlib.import_module(module)`` with the warning filters left as they were."""
    with warnings.catch_warnings():
        return importlib.import_module(module)
