"""Reinforcement as a step: per image, N seeded views and the teacher's top-k on each view."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.reinforce.config import ReinforceConfig
from curate.step import FitStep, Resources, add_columns, extend_schema
from curate.train.augment import (
    PARAM_NAMES,
    P,
    apply_params,
    decode_image,
    get_policy,
    sample_params,
    to_rgb,
    view_rng,
)

CONTENT_HASH = "content_hash"
AUG_PARAMS = "aug_params"
AUG_PARTNER = "aug_partner"
SOFT_CLASSES = "soft_classes"
SOFT_PROBS = "soft_probs"
ERROR_PREFIX = "reinforce: "
#: Views per teacher call.
VIEW_BATCH = 256


def content_hash(data: bytes) -> str:
    """The key that ties stored views to the exact image bytes they were made from."""
    return hashlib.sha256(data).hexdigest()[:16]


class ReinforceStep(FitStep):
    """``fit``: build the teacher (a head fit on the labelled rows) and fix the view size;
    per batch: every decodable image's views, their parameters and the teacher's top-k.

    Attributes
    ----------
    teacher_
        The teacher (:mod:`curate.pipelines.teachers`).
    size_
        Side of the views.
    channels_
        Channels of the views: the first decodable image's (1 for grayscale, else 3); images
        of the other kind are converted, so a manifest may mix the two.
    """

    name = "reinforce"

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return Resources(cpus=1.0, gpus=1.0 if self.config.device.startswith("cuda") else 0.0)

    def fit(self, manifest: Manifest) -> ReinforceStep:
        from curate.pipelines.teachers import build_teacher

        cfg: ReinforceConfig = self.config
        channels, height = _first_shape(manifest)
        self.size_, self.channels_ = cfg.size or height, channels
        self.teacher_ = build_teacher(
            cfg.teacher,
            manifest,
            head=cfg.head,
            folds=1,
            seed=cfg.seed,
            image_size=cfg.teacher_image_size,
            device=cfg.device,
            split=cfg.teacher_split,
        )
        return self

    def setup(self) -> None:
        self.teacher_.setup()

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cfg = self.config
        meta = {
            b"curate.augs": str(cfg.augs).encode(),
            b"curate.top_k": str(cfg.top_k).encode(),
            b"curate.params": ",".join(PARAM_NAMES).encode(),
            b"curate.view_size": str(self.size_).encode(),
            b"curate.view_channels": str(self.channels_).encode(),
            b"curate.policy": cfg.policy.encode(),
        }
        fields = [
            pa.field(S.ERROR, pa.string()),
            pa.field(CONTENT_HASH, pa.string()),
            pa.field(AUG_PARAMS, pa.list_(pa.float16(), cfg.augs * P), metadata=meta),
            pa.field(AUG_PARTNER, pa.list_(pa.string())),
            pa.field(SOFT_CLASSES, pa.list_(pa.int16(), cfg.augs * cfg.top_k), metadata=meta),
            pa.field(SOFT_PROBS, pa.list_(pa.float16(), cfg.augs * cfg.top_k), metadata=meta),
        ]
        return extend_schema(schema, fields)

    def process(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        ids = table.column(S.ID).to_pylist()
        images, errors, hashes = _decode(table, self.channels_)
        valid = [i for i, im in enumerate(images) if im is not None]
        params = np.zeros((len(ids), cfg.augs, P), np.float32)
        partners: list[list[str | None] | None] = [None] * len(ids)
        views, owners = [], []
        policy = get_policy(cfg.policy)
        mix = cfg.mix if len(valid) > 1 else "none"  # a partner is another row of the batch
        for pos, i in enumerate(valid):
            partners[i] = []
            for a in range(cfg.augs):
                rng = view_rng(cfg.seed, ids[i], a)
                p = sample_params(rng, policy, mix=mix, mix_prob=cfg.mix_prob)
                shift = 1 + int(rng.integers(len(valid) - 1)) if p[13] else 0
                j = valid[(pos + shift) % len(valid)] if p[13] else None
                params[i, a] = p
                partners[i].append(ids[j] if j is not None else None)
                other = images[j] if j is not None else None
                views.append(apply_params(images[i], p, self.size_, other))
                owners.append(i)
        classes, probs = self._top_k(views, len(ids), owners)
        return self._columns(table, errors, hashes, params, partners, classes, probs, valid)

    def _top_k(self, views: list, n: int, owners: list[int]):
        import torch

        cfg = self.config
        k = cfg.top_k
        classes = np.zeros((n, cfg.augs * k), np.int16)
        probs = np.zeros((n, cfg.augs * k), np.float16)
        out_c, out_p = [], []
        with torch.inference_mode():
            for s in range(0, len(views), VIEW_BATCH):
                x = to_rgb(torch.stack(views[s : s + VIEW_BATCH]))
                prob = torch.softmax(self.teacher_.logits(x).float(), dim=1).cpu()
                p, c = torch.topk(prob, min(k, prob.shape[1]), dim=1)
                out_c.append(c.numpy())
                out_p.append(p.numpy())
        if views:
            c, p = np.concatenate(out_c), np.concatenate(out_p)
            width = c.shape[1]
            flat_c = np.full((len(views), k), -1, np.int16)
            flat_p = np.zeros((len(views), k), np.float16)
            flat_c[:, :width], flat_p[:, :width] = c, p
            for v, i in enumerate(owners):  # views are grouped by row, in aug order
                a = v % self.config.augs
                classes[i, a * k : (a + 1) * k] = flat_c[v]
                probs[i, a * k : (a + 1) * k] = flat_p[v]
        return classes, probs

    def _columns(self, table, errors, hashes, params, partners, classes, probs, valid):
        cfg = self.config
        n = table.num_rows
        mask = np.ones(n, bool)
        mask[valid] = False
        width_p, width_k = cfg.augs * P, cfg.augs * cfg.top_k

        def fixed(values, dtype, width):
            flat = pa.array(values.reshape(-1).astype(dtype))
            return pa.FixedSizeListArray.from_arrays(flat, width, mask=pa.array(mask))

        cols = {
            S.ERROR: _merge_errors(table, errors),
            CONTENT_HASH: pa.array(hashes, pa.string()),
            AUG_PARAMS: fixed(params, np.float16, width_p),
            AUG_PARTNER: pa.array(partners, pa.list_(pa.string())),
            SOFT_CLASSES: fixed(classes, np.int16, width_k),
            SOFT_PROBS: fixed(probs, np.float16, width_k),
        }
        return add_columns(table, cols, self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        done = table.num_rows - table.column(SOFT_PROBS).null_count
        return {
            "reinforced": done,
            "views": done * self.config.augs,
            "failed": table.num_rows - done,
        }

    def run_info(self) -> dict:
        return {"teacher": self.teacher_.describe(), "view_size": self.size_}


def _decode(table: pa.Table, channels: int):
    """Per row: the uint8 image (or None), the error (or None), the content hash (or None)."""
    data = table.column(S.IMAGE).to_pylist() if S.IMAGE in table.column_names else None
    images, errors, hashes = [], [], []
    for k in range(table.num_rows):
        raw = data[k] if data is not None else None
        if not raw:
            images.append(None)
            errors.append(("missing_image", "no image bytes in the 'image' column"))
            hashes.append(None)
            continue
        hashes.append(content_hash(raw))
        try:
            images.append(decode_image(raw, channels))
            errors.append(None)
        except Exception as exc:  # PIL raises many kinds for broken bytes
            images.append(None)
            errors.append(("corrupt_image", f"{type(exc).__name__}: {exc}"))
    return images, errors, hashes


def _merge_errors(table: pa.Table, new: list) -> pa.Array:
    before = table.column(S.ERROR).to_pylist() if S.ERROR in table.column_names else None
    out = []
    for i, err in enumerate(new):
        prev = before[i] if before is not None else None
        msg = None if err is None else f"{ERROR_PREFIX}{err[0]}: {err[1]}; no views"
        out.append(msg if prev is None else (prev if msg is None else f"{prev}; {msg}"))
    return pa.array(out, pa.string())


def _first_shape(m: Manifest) -> tuple[int, int]:
    """Channels and height of the first decodable image."""
    for batch in m.iter_batches([S.IMAGE], batch_size=256):
        for raw in batch.column(0).to_pylist():
            if raw:
                try:
                    c, h, _ = decode_image(raw).shape
                    return int(c), int(h)
                except Exception:  # a broken first image: try the next
                    continue
    from curate.errors import ManifestError

    raise ManifestError(f"{m.path}: no decodable image in the 'image' column to reinforce.")
