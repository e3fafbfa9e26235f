"""The posterior soft label: cleanlab's noise channel, the prior, what the posterior keeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curate.pipelines.relabel.posterior import (
    estimate_channel,
    posterior_logits,
    posterior_probs,
)


def _noisy_oracle(n: int = 4000, seed: int = 0):
    """4 classes; 30% of class 0's labels flipped to 1; a teacher right on ~90% of rows."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, n)
    given = truth.copy()
    flip = (truth == 0) & (rng.random(n) < 0.3)
    given[flip] = 1
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), truth] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, given, probs.astype(np.float32)


def test_channel_recovers_the_injected_noise_rate():
    truth, given, probs = _noisy_oracle()
    ch = estimate_channel(given, probs, prior=0.0)
    T = ch.noise_matrix
    assert np.allclose(T.sum(axis=0), 1.0)
    assert T[1, 0] == pytest.approx(0.3, abs=0.06)  # P(given 1 | true 0)
    assert T[0, 0] == pytest.approx(0.7, abs=0.06)
    assert min(T[k, k] for k in (1, 2, 3)) > 0.9
    assert ch.label_accuracy == pytest.approx(np.mean(given == truth), abs=0.04)


def test_the_prior_keeps_a_teacher_that_is_confidently_wrong_from_overruling_clean_labels():
    given = np.repeat(np.arange(4), 10)  # 40 clean labels
    probs = np.full((40, 4), 0.1, np.float32)
    probs[np.arange(40), given] = 0.7
    wrong = np.flatnonzero(given == 3)[:5]  # the teacher calls half the 3s a 2, confidently
    probs[wrong] = [0.025, 0.025, 0.85, 0.1]
    counts_only = estimate_channel(given, probs, prior=0.0)
    assert counts_only.noise_matrix[3, 2] > 0.3  # "a third of the true 2s are labelled 3"
    row = probs[wrong[:1]]
    assert posterior_probs(row, given[wrong[:1]], counts_only).argmax() == 2  # label lost
    strong = estimate_channel(given, probs, prior=50.0)
    assert strong.noise_matrix[3, 2] < 0.1
    assert posterior_probs(row, given[wrong[:1]], strong).argmax() == 3  # label kept


def test_the_posterior_keeps_the_given_label_unless_the_teacher_is_confident_and_flips_happen():
    _, given, probs = _noisy_oracle()
    ch = estimate_channel(given, probs, prior=0.0)
    teacher = np.array([[0.7, 0.3, 0.0, 0.0], [0.95, 0.05, 0.0, 0.0], [0.95, 0.0, 0.05, 0.0]])
    q = posterior_probs(teacher, np.array([1, 1, 2]), ch)
    assert q.argmax(axis=1).tolist() == [1, 0, 2]
    # label 1 given, teacher unsure: the label stays; teacher sure, and 0 -> 1 flips happen:
    # the true class is 0; label 2 given: no class is flipped into 2, so it stays
    assert np.allclose(q.sum(axis=1), 1.0)


def test_a_missing_label_leaves_the_teacher_as_it_is():
    _, given, probs = _noisy_oracle()
    ch = estimate_channel(given, probs)
    teacher = np.array([[0.6, 0.3, 0.05, 0.05]], np.float32)
    assert np.allclose(posterior_probs(teacher, np.array([-1]), ch), teacher, atol=1e-6)


def test_the_channel_added_to_every_cell_keeps_the_mean_of_the_cells_the_global_logits():
    _, given, probs = _noisy_oracle()
    ch = estimate_channel(given, probs, prior=10.0)
    cells = torch.randn(3, 4, 2, 2)
    logits = cells.mean(dim=(2, 3))
    y = np.array([0, 1, -1])
    post_cells = posterior_logits(cells, y, ch, temperature=0.7)
    post = posterior_logits(logits, y, ch, temperature=0.7)
    assert torch.allclose(post_cells.mean(dim=(2, 3)), post, atol=1e-5)
    expected = posterior_probs(logits.softmax(dim=1).numpy(), y, ch, temperature=0.7)
    assert np.allclose(post.softmax(dim=1).numpy(), expected, atol=1e-5)


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="one row of class probabilities per label"):
        estimate_channel(np.array([0, 1]), np.ones((3, 2)) / 2)
    with pytest.raises(ValueError, match="prior=-1"):
        estimate_channel(np.array([0, 1]), np.ones((2, 2)) / 2, prior=-1)
