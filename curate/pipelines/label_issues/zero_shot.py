"""Zero-shot predicted probabilities from CLIP text prompts for the class names.

Uses the embed step's encoders (``load_encoder``; open_clip). Image embeddings come from the
manifest's ``embedding`` column when it was written by the same model and weights, else the
images are embedded first. Only meaningful with pretrained CLIP weights (a hub tag or a local
checkpoint passed as ``pretrained``); with ``pretrained=None`` the model is random and the
probabilities are noise, which is useful only to exercise the plumbing.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest

DEFAULT_CLIP_MODEL = "ViT-B-32"
TEMPLATES = ("a photo of a {}.", "a blurry photo of a {}.", "a close-up photo of a {}.")
LOGIT_SCALE = 100.0  # CLIP's learned temperature, fixed at its usual trained value


class RandomWeightsWarning(UserWarning):
    """Zero-shot ran with random CLIP weights: its probabilities carry no information."""


def clip_model_name(model: str) -> str:
    """``model`` when it names an encoder with a text tower (open_clip), else ViT-B-32."""
    from curate.pipelines.embed.registry import parse_model

    cls, _ = parse_model(model)
    return model if cls.has_text else DEFAULT_CLIP_MODEL


def class_text_embeddings(encoder, class_names: Sequence[str]) -> np.ndarray:
    """One unit vector per class: the mean of its prompt embeddings, renormalised."""
    out = []
    for name in class_names:
        emb = encoder.encode_text([t.format(name) for t in TEMPLATES]).cpu().numpy()
        mean = emb.mean(axis=0)
        out.append(mean / np.linalg.norm(mean))
    return np.stack(out)


def _same_model(manifest: Manifest, meta: dict[str, str]) -> bool:
    if S.EMBEDDING not in manifest.schema.names:
        return False
    info = S.embedding_info(manifest.schema.field(S.EMBEDDING))
    return info.get("model") == meta["model"] and info.get("pretrained") == meta["pretrained"]


def image_embeddings(
    manifest: Manifest, rows: np.ndarray, model: str, pretrained, meta
) -> np.ndarray:
    """Image embeddings from ``model`` for ``rows``: reused when present, else computed."""
    from curate.models.features import read_embedding

    if _same_model(manifest, meta):
        return read_embedding(manifest, rows)
    from curate.pipelines.embed import embed

    if S.IMAGE not in manifest.schema.names and S.PATH not in manifest.schema.names:
        raise InputError(f"{manifest.path}: zero-shot needs images ('image' or 'path').")
    with tempfile.TemporaryDirectory(prefix="curate-zero-shot-") as tmp:
        embedded = embed(
            manifest,
            Path(tmp) / "embedded",
            model=model,
            pretrained=pretrained,
            text=False,
            dtype="float32",
            progress=False,
        )
        return read_embedding(embedded, rows)


def zero_shot_pred_probs(
    manifest: Manifest,
    rows: np.ndarray,
    class_names: Sequence[str],
    *,
    model: str = DEFAULT_CLIP_MODEL,
    pretrained: str | None = None,
) -> np.ndarray:
    """Softmax over scaled cosine similarities of each image to each class's prompts."""
    from curate.pipelines.embed import load_encoder

    if pretrained is None:
        warnings.warn(
            f"zero-shot with random {model} weights: the probabilities carry no information. "
            "Pass pretrained= a hub tag or a local CLIP checkpoint (none ships offline).",
            RandomWeightsWarning,
            stacklevel=2,
        )
    encoder = load_encoder(model, pretrained).setup()
    text = class_text_embeddings(encoder, class_names)
    images = image_embeddings(manifest, rows, model, pretrained, encoder.metadata())
    logits = LOGIT_SCALE * images.astype(np.float32) @ text.T
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
