"""Teachers: a frozen backbone with fitted heads, a user's timm classifier, and ensembles.

Every teacher takes float ``(N, 3, H, W)`` RGB batches in [0, 1], resizes them itself to its
square input (``squash``: the whole image, no crop, so every cell of the map lies on the
image) and normalises them; ``predict`` returns global logits and the cell logits of the last
feature map in one backbone pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import InputError
from curate.pipelines.teachers.heads import FoldHeads

#: How a teacher resizes its input, recorded in the map's field metadata.
RESIZE_POLICY = "squash"


@dataclass
class TeacherOutput:
    """``logits`` ``(N, C)`` and ``cells`` ``(N, C, g, g)`` (None when not asked for)."""

    logits: Any
    cells: Any = None


class Backbone:
    """A frozen feature extractor giving the last feature map ``(N, D, h, w)`` before pooling.

    ``model`` is ``efficientnet_lite0`` (offline ImageNet weights) or ``timm:<name>`` with a
    local weights file (``pretrained``). ``features`` returns the map divided by the norm of
    its spatial mean, so the mean of the cells is the L2-normalised pooled embedding.
    """

    def __init__(self, model: str, pretrained: str | None, *, image_size: int, device: str):
        self.model, self.pretrained = model, pretrained
        self.image_size, self.device_request = image_size, device
        self.encoder = None

    def setup(self) -> Backbone:
        if self.encoder is None:
            from curate.pipelines.embed.registry import load_encoder

            if not (self.model == "efficientnet_lite0" or self.model.startswith("timm:")):
                raise InputError(
                    f"teacher backbone {self.model!r}: a localized map needs a convolutional "
                    "feature map; use efficientnet_lite0 or timm:<cnn>=<weights file>."
                )
            enc = load_encoder(
                self.model,
                pretrained=self.pretrained,
                device=self.device_request,
                image_size=self.image_size,
            )
            self.encoder = enc.setup()
        return self

    @property
    def device(self) -> str:
        return self.setup().encoder.device

    def __getstate__(self) -> dict:
        return {**vars(self), "encoder": None}  # weights reload in setup(), on the worker

    def normalise(self, images):
        """Resize (squash) and normalise a float [0, 1] batch for the backbone."""
        import torch.nn.functional as F

        enc = self.setup().encoder
        x = images.to(enc.device).float()
        s = self.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False, antialias=True)
            x = x.clamp_(0.0, 1.0)
        return (x - enc._mean) / enc._std

    def raw_features(self, images):
        """The last feature map ``(N, D, h, w)`` before pooling, float32, as the model gives it."""
        import torch

        enc = self.setup().encoder
        x = self.normalise(images)
        with torch.inference_mode(), enc._autocast():
            if enc.family == "efficientnet":
                fmap = enc.model.extract_features(x)
            else:
                fmap = enc.model.forward_features(x)
        fmap = fmap.float()
        if fmap.ndim != 4:
            raise InputError(f"teacher backbone {self.model!r} gives no 2-D feature map.")
        return fmap

    def features(self, images):
        """The feature map ``(N, D, h, w)``, scaled so its spatial mean has unit norm."""
        fmap = self.raw_features(images)
        norm = fmap.mean(dim=(2, 3)).norm(dim=1).clamp(min=1e-12)
        return fmap / norm[:, None, None, None]

    def grid(self) -> int:
        """Side of the feature map at this backbone's input size (one probe image)."""
        import torch

        probe = torch.zeros(1, 3, self.image_size, self.image_size)
        return int(self.raw_features(probe).shape[-1])

    def describe(self) -> dict[str, Any]:
        meta = self.setup().encoder.metadata()
        return {
            "model": meta["model"],
            "pretrained": meta.get("pretrained"),
            "checkpoint_sha256": meta.get("checkpoint_sha256"),
        }


class Teacher:
    """What relabel and reinforce call. Subclasses implement ``_predict`` and ``describe``.

    Attributes: ``name``, ``class_names`` (None: the manifest's, unchecked), ``image_size``,
    ``grid`` (side of the cell map, known after ``setup``).
    """

    name = "teacher"
    class_names: list[str] | None = None
    image_size: int = 224

    def setup(self) -> Teacher:
        return self

    def folds_for(self, ids: list[str]) -> np.ndarray | None:
        """The fold index per row id (-1: a row no fold held out), or None for a teacher
        without fold models."""
        return None

    def predict(self, images, *, folds: np.ndarray | None = None, cells: bool = True):
        """Global and (``cells``) per-cell logits; ``folds`` picks each row's fold head."""
        return self.setup()._predict(images, folds=folds, cells=cells)

    def logits(self, images, *, folds: np.ndarray | None = None):
        """``(N, C)`` logits (float32 torch, on the teacher's device)."""
        return self.predict(images, folds=folds, cells=False).logits

    def cell_logits(self, images, *, folds: np.ndarray | None = None):
        """``(N, C, g, g)`` logits of every cell of the last feature map (rows: top to bottom)."""
        return self.predict(images, folds=folds, cells=True).cells

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, directory: str | Path) -> Path:
        """Write ``teacher.json`` (and fitted heads, if any) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "teacher.json").write_text(json.dumps(self.describe(), indent=2, default=str))
        return d


class BackboneTeacher(Teacher):
    """A frozen backbone plus heads trained on the manifest's labels (out of fold).

    For a row in ``heads.fold_of`` the fold head that never saw it predicts; other rows get
    the mean of the fold heads' logits. Cell logits are the head applied to every cell (a
    1x1 convolution); global logits are the mean of the cell logits, which for the logistic
    head equals the head on the pooled embedding.
    """

    def __init__(self, backbone: Backbone, heads: FoldHeads, class_names: list[str] | None):
        self.backbone, self.heads, self.class_names = backbone, heads, class_names
        self.image_size = backbone.image_size
        self.name = f"{backbone.model}+{heads.heads[0].kind}"
        self.grid = None

    def setup(self) -> BackboneTeacher:
        if self.grid is None:
            self.grid = self.backbone.grid()
        return self

    def folds_for(self, ids: list[str]) -> np.ndarray | None:
        return self.heads.folds_for(ids) if self.heads.fold_of else None

    def _predict(self, images, *, folds, cells):
        import torch

        fmap = self.backbone.features(images)
        n, C = fmap.shape[0], self.heads.heads[0].num_classes
        folds = np.full(n, -1) if folds is None else np.asarray(folds)
        out = torch.empty(n, C, *fmap.shape[-2:], device=fmap.device)
        for k in np.unique(folds):
            rows = torch.as_tensor(np.flatnonzero(folds == k), device=fmap.device)
            heads = self.heads.heads if k < 0 else [self.heads.heads[k]]
            part = fmap[rows]
            out[rows] = sum(h.apply_cells(part) for h in heads) / len(heads)
        if self.heads.heads[0].kind == "logreg":
            logits = out.mean(dim=(2, 3))
        else:
            pooled = fmap.mean(dim=(2, 3))
            logits = torch.empty(n, C, device=fmap.device)
            for k in np.unique(folds):
                rows = torch.as_tensor(np.flatnonzero(folds == k), device=fmap.device)
                heads = self.heads.heads if k < 0 else [self.heads.heads[k]]
                logits[rows] = sum(h.apply(pooled[rows]) for h in heads) / len(heads)
        return TeacherOutput(logits, out if cells else None)

    def describe(self) -> dict[str, Any]:
        self.setup()
        return {
            "name": self.name,
            **self.backbone.describe(),
            "head": self.heads.heads[0].kind,
            "folds": len(self.heads.heads),
            "classes": self.class_names,
            "input_size": self.image_size,
            "grid": self.grid,
            "resize": RESIZE_POLICY,
        }

    def save(self, directory: str | Path) -> Path:
        d = super().save(directory)
        arrays = {
            f"fold{k}_layer{i}_{p}": a
            for k, h in enumerate(self.heads.heads)
            for i, layer in enumerate(h.layers)
            for p, a in zip("wb", layer, strict=True)
        }
        np.savez(d / "heads.npz", **arrays)
        return d


class ClassifierTeacher(Teacher):
    """A user's timm classifier (``timm:<name>=<weights>``) whose classes are the manifest's.

    The map applies its linear classifier to every cell of ``forward_features``; that needs a
    global-average-pool + linear head, checked at setup on a probe image.
    """

    def __init__(
        self,
        model: str,
        weights: str,
        *,
        num_classes: int,
        image_size: int,
        device: str = "auto",
        class_names: list[str] | None = None,
    ):
        self.model, self.weights, self.num_classes = model, weights, num_classes
        self.image_size, self.device_request, self.class_names = image_size, device, class_names
        self.name = f"classifier:timm:{model}"
        self.net = None
        self.grid = None

    def setup(self) -> ClassifierTeacher:
        if self.net is not None:
            return self
        import torch

        from curate.errors import require
        from curate.pipelines.embed.encoders import _read_state_dict, resolve_device

        timm = require("timm", "clip", package="timm")
        self.device = resolve_device(self.device_request)
        net = timm.create_model(self.model, pretrained=False, num_classes=self.num_classes)
        state = _read_state_dict(self.weights)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(
                f"{self.weights}: does not fit timm {self.model!r} with {self.num_classes} "
                f"classes (the manifest's): {str(exc).splitlines()[0]}"
            ) from exc
        self.net = net.to(self.device).eval()
        cfg = timm.data.resolve_model_data_config(net)
        self._mean = torch.tensor(cfg["mean"], device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg["std"], device=self.device).view(1, 3, 1, 1)
        probe = torch.rand(
            1, 3, self.image_size, self.image_size, generator=torch.Generator().manual_seed(0)
        )
        out = self._predict(probe, folds=None, cells=True)
        if not torch.allclose(
            out.cells.mean(dim=(2, 3)), self._logits(probe), atol=1e-3, rtol=1e-3
        ):
            raise InputError(
                f"timm {self.model!r}: its head is not a global-average-pool + linear layer, so "
                "no localized map can be read from its feature map; use it in an ensemble with "
                "a backbone teacher, or pass a CNN with a linear classifier."
            )
        self.grid = int(out.cells.shape[-1])
        return self

    def __getstate__(self) -> dict:
        return {**vars(self), "net": None}  # weights reload in setup(), on the worker

    def _prepare(self, images):
        import torch.nn.functional as F

        x = images.to(self.device).float()
        s = self.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False, antialias=True)
        return (x.clamp(0.0, 1.0) - self._mean) / self._std

    def _logits(self, images):
        import torch

        with torch.inference_mode():
            return self.net(self._prepare(images)).float()

    def _predict(self, images, *, folds, cells):
        import torch

        with torch.inference_mode():
            fmap = self.net.forward_features(self._prepare(images)).float()
            return linear_cells(fmap, self.net.get_classifier(), cells=cells)

    def describe(self) -> dict[str, Any]:
        from curate.pipelines.embed.encoders import file_sha256

        self.setup()
        return {
            "name": self.name,
            "checkpoint": Path(self.weights).name,
            "checkpoint_sha256": file_sha256(self.weights),
            "classes": self.class_names,
            "input_size": self.image_size,
            "grid": self.grid,
            "resize": RESIZE_POLICY,
        }


class Ensemble(Teacher):
    """Members' probabilities averaged; logits are ``log(mean softmax)`` (globally and per
    cell, each member's cell map resized to the first member's grid)."""

    def __init__(self, members: list[Teacher]):
        if len(members) < 2:
            raise ValueError("an ensemble needs two or more teachers.")
        self.members = members
        self.class_names = next((m.class_names for m in members if m.class_names), None)
        self.image_size = max(m.image_size for m in members)  # each member resizes to its own
        self.name = "+".join(m.name for m in members)
        self.grid = None

    def setup(self) -> Ensemble:
        for m in self.members:
            m.setup()
        self.grid = self.members[0].grid
        return self

    def folds_for(self, ids: list[str]) -> np.ndarray | None:
        """The members' fold indices: members fit here share one fold split (the same
        stratified, seeded K-fold of the same rows); members without folds ignore them."""
        return next((f for m in self.members if (f := m.folds_for(ids)) is not None), None)

    def _predict(self, images, *, folds, cells):
        import torch

        outs = [m.predict(images, folds=folds, cells=cells) for m in self.members]
        probs = torch.stack([o.logits.softmax(dim=1) for o in outs]).mean(dim=0)
        cell = None
        if cells:
            g = self.grid
            maps = [_to_grid(o.cells, g) for o in outs]
            cell = torch.stack([c.softmax(dim=1) for c in maps]).mean(dim=0).clamp(min=1e-12).log()
        return TeacherOutput(probs.clamp(min=1e-12).log(), cell)

    def describe(self) -> dict[str, Any]:
        self.setup()
        return {
            "name": self.name,
            "members": [m.describe() for m in self.members],
            "classes": self.class_names,
            "input_size": self.image_size,
            "grid": self.grid,
            "resize": RESIZE_POLICY,
            "combine": "mean of probabilities",
        }

    def save(self, directory: str | Path) -> Path:
        d = super().save(directory)
        for i, m in enumerate(self.members):
            m.save(d / f"member{i}")
        return d


def linear_cells(fmap, fc, *, cells: bool = True) -> TeacherOutput:
    """A GAP + linear classifier ``fc`` applied to every cell of ``fmap`` ``(N, D, h, w)``: the
    cell logits, and their mean, which is the classifier on the pooled map (it is linear)."""
    import torch

    with torch.inference_mode():
        cell = (
            torch.einsum("ndhw,cd->nchw", fmap, fc.weight.float()) + fc.bias.float()[:, None, None]
        )
    return TeacherOutput(cell.mean(dim=(2, 3)), cell if cells else None)


def _to_grid(cells, g: int):
    """Resample a cell map to ``g`` x ``g`` (area average down, bilinear up)."""
    import torch.nn.functional as F

    if cells.shape[-1] >= g:
        return F.adaptive_avg_pool2d(cells, g)
    return F.interpolate(cells, size=(g, g), mode="bilinear", align_corners=False)
