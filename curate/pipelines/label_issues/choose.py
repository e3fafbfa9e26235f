"""The default predictor, ``predictor="auto"``: chosen from what the manifest holds.

Measured (BENCHMARKS.md, Label issues): on small images the pixel CNN is the strongest
built-in predictor (MNIST test-set audit 99.12% against 97.40% for mlp and 92.54% for logreg on
pixels; the Fashion-MNIST demo set 87.7% against 83.2% for logreg on EfficientNet-Lite0
embeddings), and it needs no embedding pass; on photos a pretrained embedding is the strong
input. So: an existing ``embedding`` column, or images too large for the CNN, mean ``logreg``;
small images and no embedding (or ``features="pixels"``) mean ``cnn``. Multi-label manifests
use ``logreg``.
"""

from __future__ import annotations

import dataclasses

from curate.manifests.io import Manifest
from curate.models.features import has_embedding, pixel_side
from curate.pipelines.label_issues.config import LabelIssuesConfig
from curate.pipelines.label_issues.plan import is_multilabel

AUTO = "auto"


def choose_predictor(m: Manifest, cfg: LabelIssuesConfig) -> tuple[LabelIssuesConfig, str]:
    """``cfg`` with ``predictor="auto"`` replaced by the choice, and why (empty when given)."""
    if cfg.predictor != AUTO:
        return cfg, ""
    multilabel, embedded = is_multilabel(m.schema.names), has_embedding(m)
    small = None if multilabel or cfg.features == "embedding" else pixel_side(m)
    wants_pixels = cfg.features == "pixels" or not embedded
    if small is not None and wants_pixels:
        what = "pixel features" if cfg.features == "pixels" else "no embedding column"
        why = (
            f"predictor auto -> cnn: {what} and small images ({small} px), where the pixel "
            "CNN is the stronger predictor "
            "(pass --predictor logreg to embed first instead)"
        )
        return dataclasses.replace(cfg, predictor="cnn"), why
    reason = "an embedding column" if embedded else "images too large for the pixel CNN"
    if multilabel:
        reason = "multi-labels"
    return dataclasses.replace(cfg, predictor="logreg"), f"predictor auto -> logreg ({reason})"
