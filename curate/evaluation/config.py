"""The options of ``curate evaluate``: one frozen, validated config for the Python API and CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass

from curate.errors import InputError
from curate.manifests import schema as S

#: How the random baseline draws its rows: ``uniform`` over the pool's usable rows, or
#: ``stratified``: the same number of rows per class as the subset it is compared with.
RANDOM_MODES = ("uniform", "stratified")


@dataclass(frozen=True)
class EvaluateConfig:
    """How each subset is trained and tested; see :func:`curate.evaluation.evaluate`."""

    model: str = "probe"
    seeds: int = 3
    random: str = "uniform"
    test_split: str | None = None
    test_fraction: float | None = None
    test_seed: int = 0
    epochs: int = 8
    probe_dim: int = 128
    probe_c: float = 0.5
    device: str = "auto"
    threads: int | None = None
    embedding_column: str = S.EMBEDDING

    def __post_init__(self) -> None:
        from curate.evaluation.models import MODELS

        if self.model not in MODELS:
            raise InputError(
                f"unknown model {self.model!r} (--model); choose one of {', '.join(MODELS)}"
            )
        if self.random not in RANDOM_MODES:
            raise InputError(
                f"unknown random baseline {self.random!r} (--random); choose one of "
                f"{', '.join(RANDOM_MODES)}"
            )
        for name in ("seeds", "epochs", "probe_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer (--{name}), got {value!r}")
        if self.test_fraction is not None and not (
            isinstance(self.test_fraction, int | float)
            and math.isfinite(self.test_fraction)
            and 0 < self.test_fraction < 1
        ):
            raise InputError(
                f"test_fraction must be in (0, 1) (--test-fraction), got {self.test_fraction!r}; "
                "e.g. --test-fraction 0.2 holds out a seeded 20% of the pool as the test set."
            )
        if self.test_split is not None and self.test_fraction is not None:
            raise InputError("give one test set: --test-split or --test-fraction, not both.")
        if not self.probe_c > 0:
            raise InputError(f"probe_c must be > 0, got {self.probe_c!r}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads!r}")
