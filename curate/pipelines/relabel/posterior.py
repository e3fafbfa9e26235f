"""The soft label as a posterior: the teacher's probabilities combined with the given label
through a noise channel estimated by confident learning.

The given label is evidence about the true class, as reliable as the labels are. cleanlab's
confident joint (``cleanlab.count.compute_confident_joint``, calibrated and normalised by
``estimate_joint``) estimates, from the teacher's out-of-fold probabilities, the joint
``Q[i, j] = P(given = i, true = j)``; its columns give the noise channel
``T[i, j] = P(given = i | true = j)``. For a row with given label ``y``, the posterior over
its true class is::

    q(c) ∝ p_teacher(c) ** (1 / temperature) * T[y, c]

so a class the labels rarely flip into ``y`` needs a confident teacher to win, and on clean
labels (``T`` near the identity) the given label stays.

The channel is estimated from the teacher itself, so a teacher that is confidently wrong on a
class would make that class's labels look unreliable and the posterior would then follow the
teacher twice. ``prior`` guards against it: each column of ``T`` starts from ``prior``
pseudo-rows whose label is right (a Dirichlet prior on the identity), so a channel estimated
from few rows trusts the labels and one estimated from many rows follows the counts; and
:data:`FLOOR` of the uniform is mixed in, so no class is ruled out by a count of zero. In logits
the channel is a per-row vector added to the teacher's logits: added to every map cell
as well, the mean of the cell logits stays the (posterior) global logits.

ReLabel's own target is the teacher alone (``target="teacher"``): right when the teacher is
much stronger than the labels, harmful when it is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The soft-label targets: the posterior (default) or ReLabel's pure teacher.
TARGETS = ("posterior", "teacher")
#: Weight of the uniform distribution mixed into every column of the noise matrix.
FLOOR = 1e-3


@dataclass
class NoiseChannel:
    """An estimated noise channel.

    Attributes
    ----------
    noise_matrix
        ``(C, C)``: ``P(given = i | true = j)``, columns summing to 1 (prior applied).
    joint
        cleanlab's estimated joint ``P(given = i, true = j)`` (no prior).
    label_accuracy
        The estimated share of given labels that are the true class (the joint's trace).
    prior
        Pseudo-rows per class whose label is right, added to the confident joint's counts.
    """

    noise_matrix: np.ndarray
    joint: np.ndarray
    label_accuracy: float
    prior: float = 0.0
    log_noise: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.log_noise = np.log(np.clip(self.noise_matrix, 1e-30, None)).astype(np.float32)

    def log_evidence(self, given: np.ndarray) -> np.ndarray:
        """``(n, C)``: ``log P(given_row | true = c)``; zeros (no evidence) where the given
        label is negative (missing)."""
        given = np.asarray(given, dtype=np.int64)
        out = np.zeros((len(given), self.noise_matrix.shape[0]), np.float32)
        known = given >= 0
        out[known] = self.log_noise[given[known]]
        return out

    def summary(self) -> dict:
        """What run.json records: the estimated label accuracy, the prior, the matrix."""
        return {
            "estimated_label_accuracy": round(self.label_accuracy, 6),
            "prior": self.prior,
            "noise_matrix": np.round(self.noise_matrix, 5).tolist(),
        }


def estimate_channel(
    labels: np.ndarray, pred_probs: np.ndarray, *, prior: float = 0.0
) -> NoiseChannel:
    """The noise channel of ``labels`` given out-of-sample ``pred_probs`` ``(n, C)``.

    Parameters
    ----------
    labels
        Given labels, ints in ``[0, C)``.
    pred_probs
        Out-of-sample predicted probabilities (no row predicted by a model that saw it).
    prior
        Pseudo-rows per class whose given label is right, added to each class's column of
        the confident joint before it is normalised (0: the counts alone).
    """
    labels = np.asarray(labels, dtype=np.int64)
    pred_probs = np.asarray(pred_probs, dtype=np.float32)
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(
            f"pred_probs has shape {pred_probs.shape} for {len(labels)} labels: one row of "
            "class probabilities per label."
        )
    if not prior >= 0.0:
        raise ValueError(f"prior={prior!r}: must be zero or positive.")
    return _compute_channel(labels, pred_probs, prior)


def _compute_channel(labels: np.ndarray, pred_probs: np.ndarray, prior: float):
    from curate._cleanlab import import_cleanlab

    count = import_cleanlab("cleanlab.count")
    n_classes = pred_probs.shape[1]
    cj = count.compute_confident_joint(labels, pred_probs)  # calibrated: sums to len(labels)
    joint = count.estimate_joint(labels, pred_probs, confident_joint=cj)
    counts = cj.astype(np.float64) + prior * np.eye(n_classes)
    mass = counts.sum(axis=0)
    noise = np.eye(n_classes)  # a class no row is estimated to hold: its label is its own
    seen = mass > 0
    noise[:, seen] = counts[:, seen] / mass[seen]
    noise = (1.0 - FLOOR) * noise + FLOOR / n_classes
    return NoiseChannel(noise, joint, float(np.trace(joint)), prior)


def posterior_logits(logits, given: np.ndarray, channel: NoiseChannel | None, *,
                     temperature: float = 1.0):  # fmt: skip
    """Logits whose softmax is the posterior; ``logits`` torch ``(n, C, ...)`` (global logits or
    a cell map), ``given`` ``(n,)`` ints (negative: no label). Without a channel: the teacher's
    logits divided by the temperature."""
    import torch

    out = logits / temperature
    if channel is None:
        return out
    ev = torch.from_numpy(channel.log_evidence(given)).to(out.device)
    return out + ev.view(*ev.shape, *([1] * (out.ndim - 2)))


def posterior_probs(probs: np.ndarray, given: np.ndarray, channel: NoiseChannel, *,
                    temperature: float = 1.0) -> np.ndarray:  # fmt: skip
    """The posterior from probabilities ``(n, C)`` (numpy); rows sum to 1."""
    logp = np.log(np.clip(probs, 1e-30, None)) / temperature + channel.log_evidence(given)
    logp -= logp.max(axis=1, keepdims=True)
    q = np.exp(logp)
    return q / q.sum(axis=1, keepdims=True)
