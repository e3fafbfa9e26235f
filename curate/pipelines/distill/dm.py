"""DM, distribution matching (Zhao & Bilen): match the mean embedding of each class."""

from __future__ import annotations

from curate.pipelines.distill.base import DistillMethod


class DistributionMatching(DistillMethod):
    """The statistic is the network's final flattened embedding; its class mean is matched."""

    name = "dm"
    default_lr = 1.0  # the DM paper's, with the same per-class sum of squared distances
    lr_grid = (0.3, 1.0, 3.0, 10.0)

    def statistics(self, net, x) -> list:
        return [net.embed(x)]
