"""Zero-shot predicted probabilities from CLIP text prompts for the class names (open_clip).

Only meaningful with pretrained CLIP weights (a hub tag or a local checkpoint path passed as
``pretrained``); without them (``pretrained=None``) the model is random and the probabilities
are noise, which is useful only to exercise the plumbing.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np

from curate.errors import InputError, require
from curate.manifests import schema as S
from curate.manifests.io import Manifest

DEFAULT_CLIP_MODEL = "ViT-B-32"
TEMPLATES = ("a photo of a {}.", "a blurry photo of a {}.", "a close-up photo of a {}.")
LOGIT_SCALE = 100.0  # CLIP's learned temperature, fixed at its usual trained value


class RandomWeightsWarning(UserWarning):
    """Zero-shot ran with random CLIP weights: its probabilities carry no information."""


def clip_model_name(model: str) -> str:
    """``model`` when it names an open_clip architecture, else the default CLIP model."""
    open_clip = require("open_clip", "clip", package="open_clip_torch")
    name = model.removeprefix("open_clip:").split("@")[0]
    return name if name in open_clip.list_models() else DEFAULT_CLIP_MODEL


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _encode_text(model, tokenizer, class_names: Sequence[str], device: str) -> np.ndarray:
    import torch

    with torch.no_grad():
        per_class = []
        for name in class_names:
            tokens = tokenizer([t.format(name) for t in TEMPLATES]).to(device)
            emb = model.encode_text(tokens).float()
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(dim=0)
            per_class.append((mean / mean.norm()).cpu().numpy())
    return np.stack(per_class)


def _encode_images(model, preprocess, manifest: Manifest, rows: np.ndarray, device: str):
    import torch
    from PIL import Image

    wanted = set(int(r) for r in rows)
    feats, offset = {}, 0
    for batch in manifest.iter_batches([S.IMAGE], batch_size=256):
        picked = [i for i in range(batch.num_rows) if offset + i in wanted]
        if picked:
            col = batch.column(0)
            ims = [
                preprocess(Image.open(io.BytesIO(col[i].as_py())).convert("RGB")) for i in picked
            ]
            with torch.no_grad():
                emb = model.encode_image(torch.stack(ims).to(device)).float()
            emb = (emb / emb.norm(dim=-1, keepdim=True)).cpu().numpy()
            feats.update({offset + i: e for i, e in zip(picked, emb, strict=True)})
        offset += batch.num_rows
    return np.stack([feats[int(r)] for r in rows])


def zero_shot_pred_probs(
    manifest: Manifest,
    rows: np.ndarray,
    class_names: Sequence[str],
    *,
    model: str = DEFAULT_CLIP_MODEL,
    pretrained: str | None = None,
) -> np.ndarray:
    """Softmax over cosine similarities of each image to each class's prompt embedding."""
    open_clip = require("open_clip", "clip", package="open_clip_torch")
    if S.IMAGE not in manifest.schema.names:
        raise InputError(f"{manifest.path}: zero-shot needs the 'image' column (bytes).")
    if pretrained is None:
        warnings.warn(
            f"zero-shot with random {model} weights: the probabilities carry no information. "
            "Pass pretrained= a hub tag or a local CLIP checkpoint (none ships offline).",
            RandomWeightsWarning,
            stacklevel=2,
        )
    device = _device()
    clip, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained)
    clip = clip.to(device).eval()
    tokenizer = open_clip.get_tokenizer(model)
    text = _encode_text(clip, tokenizer, class_names, device)
    images = _encode_images(clip, preprocess, manifest, rows, device)
    logits = LOGIT_SCALE * images @ text.T
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
