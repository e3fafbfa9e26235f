"""Soft-target losses: stored top-k labels densify to distributions; the losses agree with torch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from curate.train.losses import (  # noqa: E402
    densify_topk,
    kl_divergence,
    mix_with_labels,
    soft_target_cross_entropy,
)


def test_densify_puts_mass_only_on_stored_classes():
    classes = torch.tensor([[2, 0, -1], [1, 3, 0]])
    probs = torch.tensor([[0.6, 0.2, 0.0], [0.5, 0.25, 0.25]], dtype=torch.float16)
    dense = densify_topk(classes, probs, 4)
    assert torch.allclose(dense.sum(1), torch.ones(2))
    assert dense[0, 1] == 0 and dense[0, 3] == 0
    assert torch.isclose(dense[0, 2], torch.tensor(0.75), atol=1e-3)


def test_soft_target_ce_equals_hard_ce_on_one_hot():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 1])
    one_hot = torch.nn.functional.one_hot(labels, 4).float()
    want = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.isclose(soft_target_cross_entropy(logits, one_hot), want)


def test_kl_is_zero_when_student_matches_teacher():
    logits = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
    assert kl_divergence(logits, torch.softmax(logits, 1)).abs() < 1e-6


def test_mix_with_labels_moves_the_given_weight():
    targets = torch.full((2, 4), 0.25)
    mixed = mix_with_labels(targets, torch.tensor([1, 3]), 0.4)
    assert torch.allclose(mixed.sum(1), torch.ones(2))
    assert torch.isclose(mixed[0, 1], torch.tensor(0.25 * 0.6 + 0.4))
