"""Fixed evaluation protocols: one model per curated subset, against random at equal budget.

The step a user calls is ``curate.evaluate`` (:func:`curate.evaluation.harness.evaluate`)."""

from curate.evaluation.config import EvaluateConfig
from curate.evaluation.harness import EvaluateResult, evaluate

__all__ = ["EvaluateConfig", "EvaluateResult", "evaluate"]
