"""DataDAM, attention matching (Sajedi et al.): match spatial attention maps and the embedding."""

from __future__ import annotations

from curate.pipelines.distill.base import DistillMethod


def spatial_attention(feature_map, power: int):
    """sum over channels of |f|^p, flattened over space and L2-normalised per image."""
    import torch

    a = feature_map.float().abs().pow(power).sum(dim=1).flatten(1)
    return torch.nn.functional.normalize(a, dim=1)


class AttentionMatching(DistillMethod):
    """Statistics: the attention map of every intermediate block (all but the last), each of
    weight 1, and the final embedding, of weight ``embed_weight``."""

    name = "datadam"
    # No default: its attention terms are distances between unit vectors, so its loss and
    # pixel gradient are ~50x smaller than DM's and DM's lr 1 barely moves the images; the
    # lr is chosen on a validation split among these (BENCHMARKS.md "Distill").
    lr_grid = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)

    def statistics(self, net, x) -> list:
        maps, embedding = net.feature_maps(x)
        att = [spatial_attention(f, self.attention_power) for f in maps[:-1]]
        return [*att, embedding]

    def weights(self, n_statistics: int) -> list[float]:
        return [1.0] * (n_statistics - 1) + [self.embed_weight]
