"""Fixed evaluation protocols: one model per curated subset, against random at equal budget."""

from curate.evaluate.config import EvaluateConfig
from curate.evaluate.harness import EvaluateResult, evaluate

__all__ = ["EvaluateConfig", "EvaluateResult", "evaluate"]
