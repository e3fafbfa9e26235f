"""DM, distribution matching (Zhao & Bilen): match the mean embedding of each class."""

from __future__ import annotations

from curate.pipelines.distill.base import DistillMethod


class DistributionMatching(DistillMethod):
    """The statistic is the network's final flattened embedding; its class mean is matched."""

    name = "dm"

    def statistics(self, net, x) -> list:
        return [net.embed(x)]
