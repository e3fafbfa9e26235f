"""The distillation-method interface: per-image statistics whose class means are matched."""

from __future__ import annotations

from curate.errors import InputError


class UnknownMethodError(InputError, ValueError):
    """``method=`` names no registered distillation method."""


class DistillMethod:
    """A matching method: which per-image statistics of a network to compare, and how much.

    The runner feeds real and synthetic images (augmented alike) through a freshly initialised,
    frozen network each iteration; for every class it takes the mean of each statistic over
    the real batch and over the synthetic batch, and the loss is the weighted sum of squared
    distances between those means. A subclass defines :meth:`statistics` and
    :meth:`weights`.

    ``default_lr`` is the pixel learning rate at which the method is known to work (its paper's,
    under our normalisation); a method without one has its learning rate chosen among
    ``lr_grid`` on a validation split cut from the training rows.

    ``needs_teacher`` marks a method that matches a pretrained model instead of random ones
    (SRe2L, NRR-DD): the runner refuses it until one is given, so such a method can be added
    without changing this interface.
    """

    name = ""
    needs_teacher = False
    #: The pixel learning rate ``lr="auto"`` uses; None: choose it on a validation split.
    default_lr: float | None = None
    #: The learning rates tried when choosing one (``lr="select"``, or ``auto`` without a default).
    lr_grid: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)

    def __init__(self, *, embed_weight: float = 0.01, attention_power: int = 4) -> None:
        self.embed_weight = embed_weight
        self.attention_power = attention_power

    def statistics(self, net, x) -> list:
        """Per-image statistics, a list of ``(N, d_k)`` tensors."""
        raise NotImplementedError

    def weights(self, n_statistics: int) -> list[float]:
        """The weight of each statistic's squared distance."""
        return [1.0] * n_statistics

    def loss(self, real_stats: list, syn_stats: list):
        """Weighted squared distance between the mean real and mean synthetic statistics of
        one class (each list holds that class's rows only)."""
        total = 0.0
        for w, r, s in zip(self.weights(len(real_stats)), real_stats, syn_stats, strict=True):
            total = total + w * ((r.float().mean(0) - s.float().mean(0)) ** 2).sum()
        return total
