"""Calibration for reinforced training: held-out rows kept with the manifest, temperatures.

A student trained on a reinforced manifest learns the teacher's probabilities on augmented
views and is calibrated on such views, but on clean images it is more accurate than on views
while hardly more confident: it comes out under-confident (measured on Fashion-MNIST+,
BENCHMARKS.md "Reinforce"), and tempering the stored soft labels either way does not remove
it. The fix is the student's own temperature, fit on rows neither the teacher nor the student
trained on. ``curate reinforce`` keeps those rows (the ``calibration_split``, ``val``) in the
manifest and records them in ``calibration.json`` with the hash of the teacher that labelled
the views, and how calibrated that teacher is on the held-out views (its temperature there).
:func:`calibrate_student` runs a trained student on the held-out rows' clean images and fits
``T``; predict with ``softmax(logits / T)``.
"""

from __future__ import annotations

import json

import numpy as np

from curate.errors import ManifestError

CALIBRATION_JSON = "calibration.json"
#: Lowest probability given to a class outside a view's stored top-k when fitting.
TAIL_FLOOR = 1e-8
#: Temperatures searched (1/T between 1/20 and 20).
T_RANGE = (0.05, 20.0)


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``probs ** (1 / temperature)`` along the last axis, renormalised to the same total."""
    p = np.clip(np.asarray(probs, np.float64), 0.0, None)
    if temperature == 1.0:
        return p
    total = p.sum(axis=-1, keepdims=True)
    q = np.where(p > 0, p, 0.0) ** (1.0 / temperature)
    return q / np.clip(q.sum(axis=-1, keepdims=True), 1e-300, None) * total


def _label_logprob(classes, probs, labels, num_classes: int):
    """Per view: log p of every stored class and of the label (the tail's share if the label
    is not stored), and the tail's class count and log share."""
    p = np.clip(np.asarray(probs, np.float64), TAIL_FLOOR, None)
    valid = np.asarray(classes) >= 0
    kept = np.where(valid, p, 0.0).sum(1)
    tail_n = num_classes - valid.sum(1)
    tail_p = np.where(tail_n > 0, np.clip(1.0 - kept, 0.0, None) / np.maximum(tail_n, 1), 0.0)
    log_tail = np.log(np.clip(tail_p, TAIL_FLOOR, None))
    hit = (np.asarray(classes) == np.asarray(labels)[:, None]) & valid
    log_y = np.where(hit.any(1), np.log((p * hit).sum(1).clip(TAIL_FLOOR)), log_tail)
    return np.where(valid, np.log(p), -np.inf), log_y, tail_n, log_tail


def _nll(beta: float, logp, log_y, tail_n, log_tail) -> float:
    """Mean negative log-likelihood of the labels under ``p ** beta``, renormalised."""
    z = np.concatenate([beta * logp, (beta * log_tail + np.log(np.maximum(tail_n, 1)))[:, None]], 1)
    z[:, -1] = np.where(tail_n > 0, z[:, -1], -np.inf)
    top = z.max(1)
    lse = top + np.log(np.exp(z - top[:, None]).sum(1))
    return float(np.mean(lse - beta * log_y))


def fit_temperature(
    classes: np.ndarray, probs: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[float, dict]:
    """The temperature that minimises the labels' NLL under ``probs ** (1 / T)``,
    renormalised; for full softmax probabilities this is ``softmax(logits / T)``.

    Parameters
    ----------
    classes, probs
        ``(V, k)`` class ids (-1: empty slot) and their probabilities, one row per sample: a
        view's stored top-k, or every class of a model's softmax (``k`` = classes).
    labels
        ``(V,)`` the given label of each sample.
    num_classes
        Number of classes (the mass outside the top-k is spread evenly over the others).

    Returns
    -------
    (temperature, report)
        ``report`` has the NLL, ECE, accuracy and mean confidence before and after.
    """
    labels = np.asarray(labels)
    parts = _label_logprob(classes, probs, labels, num_classes)
    lo, hi = np.log(1.0 / T_RANGE[1]), np.log(1.0 / T_RANGE[0])
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo, hi
    for _ in range(80):  # golden-section search on log(1/T): the NLL is convex in 1/T
        c, d = b - golden * (b - a), a + golden * (b - a)
        if _nll(np.exp(c), *parts) <= _nll(np.exp(d), *parts):
            b = d
        else:
            a = c
    beta = float(np.exp((a + b) / 2.0))
    temperature = 1.0 / beta
    report = {"views": int(len(labels))}
    for name, t in (("before", 1.0), ("after", temperature)):
        q = temper(probs, t)
        top = np.argmax(q, 1)
        pred = np.take_along_axis(np.asarray(classes), top[:, None], 1)[:, 0]
        conf = q[np.arange(len(q)), top] / np.clip(q.sum(1), 1e-12, None)
        report[name] = {
            "nll": _nll(1.0 / t, *parts),
            "ece": expected_calibration_error(conf, pred == labels),
            "accuracy": float(np.mean(pred == labels)),
            "mean_confidence": float(conf.mean()),
        }
    return temperature, report


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    """ECE: equal-width confidence bins, ``|accuracy - confidence|`` weighted by the bin's
    share of samples."""
    conf = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    total = 0.0
    for b in np.unique(which):
        inside = which == b
        total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def read_calibration(manifest) -> dict:
    """The calibration record stored beside a reinforced manifest (``calibration.json``).

    Raises
    ------
    ManifestError
        There is none (no held-out rows were reinforced), or it was made for another teacher
        than the one that labelled the manifest's views (both hashes named).
    """
    from curate.manifests.io import open_manifest

    m = open_manifest(manifest)
    path = m.path / CALIBRATION_JSON
    if not path.is_file():
        raise ManifestError(
            f"{m.path}: no {CALIBRATION_JSON}, so no held-out rows to calibrate on; reinforce "
            "rows of a held-out split too (calibration_split, default 'val': rows neither the "
            "teacher nor the student trains on)."
        )
    teacher_sha256 = (m.run_info or {}).get("teacher_sha256")
    cal = json.loads(path.read_text())
    fit_for = cal.get("teacher_sha256")
    if fit_for != teacher_sha256:
        raise ManifestError(
            f"{path}: the stored calibration was made for teacher {fit_for} but the manifest's "
            f"soft labels come from teacher {teacher_sha256} (run.json); redo it with "
            f"`curate reinforce-calibrate {m.path}` (or re-run `curate reinforce`)."
        )
    return cal


def held_out_rows(manifest, *, split: str | None = None):
    """The clean images and labels of a reinforced manifest's held-out rows.

    Parameters
    ----------
    manifest
        A ``curate reinforce`` output with a calibration record (:func:`read_calibration`).
    split
        The held-out split (None: the one recorded in ``calibration.json``).

    Returns
    -------
    (images, labels)
        float ``(N, C, S, S)`` in [0, 1], resized to the views' side and channel count as
        replay makes plain images, and int64 ``(N,)``.
    """
    import torch
    import torchvision.transforms.v2.functional as F

    from curate.manifests.io import open_manifest
    from curate.train.augment import decode_image

    m = open_manifest(manifest)
    cal = read_calibration(m)
    split = split or cal["split"]
    meta = m.schema.field("aug_params").metadata or {}
    size, channels = int(meta[b"curate.view_size"]), int(meta.get(b"curate.view_channels", 0))
    t = m.read(["image", "label", "split", "soft_probs"])
    ok = np.asarray(t.column("split").to_pylist(), dtype=object) == split
    ok &= ~np.asarray(t.column("soft_probs").is_null()) & np.asarray(t.column("label").is_valid())
    t = t.filter(ok)
    if t.num_rows == 0:
        raise ManifestError(f"{m.path}: no labelled, reinforced rows of split {split!r}.")
    images = [
        F.resize(decode_image(b, channels or None), [size, size], antialias=True)
        for b in t.column("image").to_pylist()
    ]
    x = torch.stack(images).to(torch.float32) / 255.0
    return x, t.column("label").to_numpy(zero_copy_only=False).astype(np.int64)


def calibrate_student(
    model, manifest, *, split: str | None = None, batch_size: int = 256
) -> tuple[float, dict]:
    """Fit a trained student's temperature on the reinforced manifest's held-out rows.

    Parameters
    ----------
    model
        A torch module mapping ``(N, C, S, S)`` images in [0, 1] (as replay gives them) to
        logits; it is run in eval mode on its own device.
    manifest, split
        As :func:`held_out_rows`.
    batch_size
        Images per forward pass.

    Returns
    -------
    (temperature, report)
        Predict with ``softmax(logits / temperature)``. ``report`` holds the held-out rows'
        NLL, ECE, accuracy and mean confidence before and after, and the row count.
    """
    import torch

    x, y = held_out_rows(manifest, split=split)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        logits = torch.cat(
            [
                model(x[i : i + batch_size].to(device)).float().cpu()
                for i in range(0, len(x), batch_size)
            ]
        )
    model.train(was_training)
    probs = torch.softmax(logits, dim=1).numpy()
    classes = np.broadcast_to(np.arange(probs.shape[1]), probs.shape)
    temperature, report = fit_temperature(classes, probs, y, probs.shape[1])
    report["rows"] = report.pop("views")
    return temperature, report
