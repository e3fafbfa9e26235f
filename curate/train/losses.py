"""Soft targets for training: densify stored top-k labels, soft-target cross-entropy, KL."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is an extra; imported where used
    import torch


def densify_topk(
    classes: torch.Tensor, probs: torch.Tensor, num_classes: int, *, renormalize: bool = True
) -> torch.Tensor:
    """Dense ``(N, C)`` targets from stored top-k ``classes`` (int) and ``probs``, ``(N, k)``.

    Classes outside the top-k get no mass. With ``renormalize`` each row is divided by its
    kept mass, so it sums to 1 (the top-k of a softmax hold most, not all, of it). A class id
    below 0 marks an empty slot and is ignored.
    """
    import torch

    classes = classes.long()
    probs = probs.float()
    valid = classes >= 0
    out = torch.zeros(classes.shape[0], num_classes, dtype=torch.float32, device=probs.device)
    out.scatter_add_(1, classes.clamp(min=0), torch.where(valid, probs, torch.zeros_like(probs)))
    if renormalize:
        out = out / out.sum(dim=1, keepdim=True).clamp(min=1e-12)
    return out


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c targets[c] * log_softmax(logits)[c]``."""
    import torch

    return -(targets * torch.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def kl_divergence(
    logits: torch.Tensor, targets: torch.Tensor, *, temperature: float = 1.0
) -> torch.Tensor:
    """``KL(targets || softmax(logits / T))`` averaged over the batch (``batchmean``), times
    ``T**2`` as in knowledge distillation; ``targets`` are probabilities."""
    import torch
    import torch.nn.functional as F

    log_p = torch.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_p, targets.float(), reduction="batchmean") * temperature**2


def mix_with_labels(targets: torch.Tensor, labels: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 - weight) * targets + weight * one_hot(labels)``: mass ``weight`` on the given label."""
    import torch

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"label weight must be in [0, 1], got {weight}")
    one_hot = torch.zeros_like(targets).scatter_(1, labels.long().view(-1, 1), 1.0)
    return (1.0 - weight) * targets + weight * one_hot
