"""Train on a reinforced manifest: replay a stored view and its teacher soft label.

Per sample, :class:`ReplayDataset` picks one of the image's stored views (or, with probability
``plain_prob``, the plain image resized, with a one-hot target), re-applies its parameters
(:func:`curate.train.augment.apply_params`) and returns the view and the dense soft target
(top-k probabilities scattered into ``num_classes``, renormalised; classes outside the top-k
get no mass). Train with :func:`curate.train.losses.kl_divergence`; then fit the student's
temperature on the manifest's held-out rows (:func:`curate.train.calibration.calibrate_student`).
"""

from __future__ import annotations

import numpy as np

from curate.errors import ManifestError
from curate.train.augment import P, apply_params, decode_image

CONTENT_HASH, AUG_PARAMS, AUG_PARTNER = "content_hash", "aug_params", "aug_partner"
SOFT_CLASSES, SOFT_PROBS = "soft_classes", "soft_probs"


def _hash(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


class ReplayDataset:
    """A torch-style map dataset over the reinforced rows (rows without views are left out).

    Parameters
    ----------
    manifest
        A ``curate reinforce`` output (path or :class:`~curate.manifests.Manifest`).
    source
        Take the images from this manifest instead (by id); every image's bytes must hash to
        the stored ``content_hash``, else an error names the rows that changed.
    plain_prob
        Probability of returning the plain image with a one-hot target of its ``label``.
    seed
        Seeds which view each call picks (``epoch`` shifts it: call :meth:`set_epoch`).
    split
        Only rows of this ``split`` (e.g. ``train``, leaving out the held-out rows kept for
        calibrating the student); None: every row with views.
    temperature
        Temper the stored probabilities as ``p ** (1 / temperature)``, renormalised (1.0: as
        stored; below 1 sharpens). Measured on Fashion-MNIST+ neither way made the student
        calibrated (BENCHMARKS.md "Reinforce"); the student's own temperature does.

    Notes
    -----
    Items are ``(view, target)``: float ``(C, S, S)`` in [0, 1] and float ``(num_classes,)``.
    :meth:`view` returns one stored view exactly as the teacher saw it.
    """

    def __init__(
        self,
        manifest,
        *,
        source=None,
        plain_prob: float = 0.0,
        seed: int = 0,
        split: str | None = None,
        temperature: float = 1.0,
    ) -> None:
        from curate.manifests.io import open_manifest
        from curate.manifests.schema import class_names

        m = open_manifest(manifest)
        missing = [c for c in (AUG_PARAMS, SOFT_CLASSES, SOFT_PROBS) if c not in m.schema.names]
        if missing:
            raise ManifestError(
                f"{m.path}: no {missing} column(s): not a reinforced manifest; run "
                "`curate reinforce` on it first."
            )
        meta = m.schema.field(AUG_PARAMS).metadata or {}
        self.size = int(meta[b"curate.view_size"])
        self.augs = int(meta[b"curate.augs"])
        self.top_k = int(meta[b"curate.top_k"])
        self.channels = int(meta.get(b"curate.view_channels", 0)) or None
        names = class_names(m.schema)
        cols = ["id", CONTENT_HASH, AUG_PARAMS, AUG_PARTNER, SOFT_CLASSES, SOFT_PROBS]
        cols += [c for c in ("label", "image", "split") if c in m.schema.names]
        table = m.read(cols)
        keep = ~np.asarray(table.column(SOFT_PROBS).is_null())
        if split is not None:
            if "split" not in table.column_names:
                raise ManifestError(f"{m.path}: no 'split' column to select split={split!r} by.")
            keep &= np.asarray(table.column("split").to_pylist(), dtype=object) == split
        self.rows = table.take(np.flatnonzero(keep)).to_pylist()
        if not self.rows:
            raise ManifestError(f"{m.path}: no reinforced rows (split={split!r}) to replay.")
        self.images = self._images(table, source)
        self.num_classes = len(names) if names else 1 + max(max(r[SOFT_CLASSES]) for r in self.rows)
        if isinstance(temperature, bool) or not temperature > 0:
            raise ValueError(f"temperature={temperature!r}: must be > 0.")
        self.plain_prob, self.seed, self.epoch = plain_prob, seed, 0
        self.temperature = float(temperature)

    def _images(self, table, source) -> dict[str, bytes]:
        """Image bytes by id (the partners' too), checked against the stored hashes."""
        from curate.manifests.io import open_manifest

        hashes = dict(zip(table.column("id").to_pylist(), table.column(CONTENT_HASH).to_pylist(),
                          strict=True))  # fmt: skip
        if source is None:
            if "image" not in table.column_names:
                raise ManifestError("the reinforced manifest has no images: pass source=")
            images = dict(zip(table.column("id").to_pylist(), table.column("image").to_pylist(),
                              strict=True))  # fmt: skip
        else:
            src = open_manifest(source).read(["id", "image"])
            images = dict(zip(src.column("id").to_pylist(), src.column("image").to_pylist(),
                              strict=True))  # fmt: skip
        changed = [i for i, h in hashes.items() if h and _hash(images.get(i) or b"") != h]
        if changed:
            raise ManifestError(
                f"{len(changed)} image(s) changed since reinforcement (content hash differs or "
                f"the row is gone), e.g. {changed[:5]}; re-run `curate reinforce` on the new "
                "images, or replay against the source they were made from."
            )
        return images

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Draw different views in each epoch (same seed and epoch: same draws)."""
        self.epoch = epoch

    def view(self, index: int, aug: int):
        """Stored view ``aug`` of row ``index``, re-made from its parameters."""
        row = self.rows[index]
        params = np.asarray(row[AUG_PARAMS], np.float32).reshape(self.augs, P)[aug]
        partner_id = row[AUG_PARTNER][aug]
        partner = self._decode(partner_id) if partner_id else None
        return apply_params(self._decode(row["id"]), params, self.size, partner)

    def _decode(self, row_id: str):
        return decode_image(self.images[row_id], self.channels)

    def soft_target(self, index: int, aug: int):
        """The stored top-k of view ``aug``, tempered by ``temperature`` and densified
        (see :func:`~curate.train.losses.densify_topk`)."""
        import torch

        from curate.train.calibration import temper
        from curate.train.losses import densify_topk

        row, k = self.rows[index], self.top_k
        classes = torch.tensor(row[SOFT_CLASSES][aug * k : (aug + 1) * k]).view(1, k)
        probs = np.asarray(row[SOFT_PROBS][aug * k : (aug + 1) * k], np.float32)
        probs = torch.from_numpy(temper(probs, self.temperature).astype(np.float32)).view(1, k)
        return densify_topk(classes, probs, self.num_classes)[0]

    def __getitem__(self, index: int):
        import torch
        import torchvision.transforms.v2.functional as F

        rng = np.random.default_rng([self.seed, self.epoch, index])
        row = self.rows[index]
        if self.plain_prob and row.get("label") is not None and rng.random() < self.plain_prob:
            img = self._decode(row["id"])
            x = F.resize(img, [self.size, self.size], antialias=True).to(torch.float32) / 255.0
            target = torch.zeros(self.num_classes)
            target[int(row["label"])] = 1.0
            return x, target
        aug = int(rng.integers(self.augs))
        return self.view(index, aug), self.soft_target(index, aug)
