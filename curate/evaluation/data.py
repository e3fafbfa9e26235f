"""Read what the models need from a manifest: ids, labels, features, and why a row is unusable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest

#: Why a row cannot be trained or tested on; an empty string means usable.
USABLE = ""
IN_TEST = "test"
HAS_ERROR = "error"
NO_LABEL = "no_label"
NO_IMAGE = "no_image"


@dataclass
class Rows:
    """One manifest as the models see it, row by row in manifest order.

    ``features`` is ``(n, d)`` float32 (embeddings) or ``(n, c, side, side)`` float32 pixels in
    [0, 1]; unusable rows hold zeros. ``reason[i]`` is ``""`` when row ``i`` is usable, else
    why not (``error``, ``no_label``, ``invalid_embedding:null``, ``no_image``, ``test``).
    """

    manifest: Manifest
    ids: pa.Array
    labels: np.ndarray
    features: np.ndarray
    reason: np.ndarray

    @property
    def usable(self) -> np.ndarray:
        return self.reason == USABLE

    def excluded(self, mask: np.ndarray) -> dict[str, int]:
        """Rows of ``mask`` that are not usable, counted by reason."""
        why, counts = np.unique(self.reason[mask & ~self.usable], return_counts=True)
        return {str(w): int(c) for w, c in zip(why, counts, strict=True)}


def load_rows(m: Manifest, *, needs: str, embedding_column: str, role: str) -> Rows:
    """Read ``m`` for a model that ``needs`` ``"embedding"`` or ``"pixels"``.

    ``role`` ("POOL", "the test set") names the manifest in error messages.
    """
    m.validate()
    if S.LABEL not in m.schema.names:
        raise ManifestError(
            f"{m.path} ({role}): no 'label' column, so there is nothing to train or test on; "
            "evaluate a manifest with integer labels (`curate ingest ... --labels` / a label "
            "column in the source)."
        )
    cols = [S.ID, S.LABEL] + ([S.ERROR] if S.ERROR in m.schema.names else [])
    t = m.read(cols)
    labels = pc.fill_null(t[S.LABEL].combine_chunks(), -1).to_numpy(zero_copy_only=False)
    labels = labels.astype(np.int64)
    reason = np.full(m.num_rows, USABLE, dtype=object)
    if needs == "embedding":
        features, feature_reason = _embeddings(m, embedding_column, role)
    else:
        features, feature_reason = _pixels(m, role)
    bad_feature = feature_reason != USABLE
    reason[bad_feature] = feature_reason[bad_feature]
    reason[labels < 0] = NO_LABEL
    if S.ERROR in cols:
        reason[t[S.ERROR].combine_chunks().is_valid().to_numpy(zero_copy_only=False)] = HAS_ERROR
    return Rows(m, t[S.ID].combine_chunks(), labels, features, reason)


def _embeddings(m: Manifest, column: str, role: str) -> tuple[np.ndarray, np.ndarray]:
    from curate.pipelines import _embeddings as E

    if column not in m.schema.names:
        raise ManifestError(
            f"{m.path} ({role}): no embedding column {column!r} for the probe; run `curate "
            f"embed {m.path} -o OUT` and evaluate OUT, pass --embedding-column NAME, or train "
            "on pixels with --model cnn."
        )
    info = E.check_embedding_column(m, column)
    parts, codes = [], []
    for _, mat, code, _ in E.scan(m, info):
        parts.append(mat)
        codes.append(code)
    code = np.concatenate(codes) if codes else np.zeros(0, np.int8)
    reason = np.full(len(code), USABLE, dtype=object)
    for c in np.unique(code[code != E.VALID]):
        reason[code == c] = E.reason_text(int(c))
    features = np.concatenate(parts) if parts else np.zeros((0, info.dim), np.float32)
    return features, reason


def _pixels(m: Manifest, role: str) -> tuple[np.ndarray, np.ndarray]:
    from curate.models.features import MAX_PIXEL_SIDE, read_pixels

    if S.IMAGE not in m.schema.names:
        raise ManifestError(
            f"{m.path} ({role}): --model cnn trains on pixels but there is no 'image' column; "
            "evaluate the manifest that holds the image bytes, or use --model probe on the "
            "embedding."
        )
    present = m.read([S.IMAGE])[S.IMAGE].combine_chunks().is_valid().to_numpy(zero_copy_only=False)
    reason = np.where(present, USABLE, NO_IMAGE).astype(object)
    rows = np.flatnonzero(present)
    if not len(rows):
        return np.zeros((len(present), 1, 4, 4), np.float32), reason
    pixels = read_pixels(m, rows)
    if pixels.shape[-1] > MAX_PIXEL_SIDE:
        raise InputError(
            f"{m.path} ({role}): images are {pixels.shape[-1]} px; the small CNN takes images "
            f"up to {MAX_PIXEL_SIDE} px. Use --model probe on an embedding instead."
        )
    full = np.zeros((len(present), *pixels.shape[1:]), np.float32)
    full[rows] = pixels
    return full, reason


def check_same_features(pool: Rows, test: Rows, *, needs: str, column: str) -> None:
    """The test set's features must be of the pool's kind: same embedding model, same pixels."""
    if needs == "embedding":
        from curate.pipelines.embed.compat import check_same_embedding_model

        check_same_embedding_model(
            pool.manifest.schema.field(column),
            test.manifest.schema.field(column),
            sources=[f"{pool.manifest.path} (POOL)", f"{test.manifest.path} (test set)"],
            allow_unknown=True,
        )
    elif pool.features.shape[1:] != test.features.shape[1:]:
        raise InputError(
            f"{test.manifest.path} (test set): images of shape {test.features.shape[1:]} but "
            f"the pool's are {pool.features.shape[1:]}; test on images like the pool's."
        )
