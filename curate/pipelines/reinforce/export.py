"""Export a reinforced manifest as WebDataset tar shards (image + views json + soft labels)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np

from curate.errors import ManifestError
from curate.manifests import schema as S
from curate.manifests.io import open_manifest
from curate.pipelines.reinforce.step import (
    AUG_PARAMS,
    AUG_PARTNER,
    CONTENT_HASH,
    SOFT_CLASSES,
    SOFT_PROBS,
)
from curate.train.augment import PARAM_NAMES, P


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _ext(data: bytes) -> str:
    return "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpg"


def export_webdataset(
    manifest: str | os.PathLike, out_dir: str | os.PathLike, *, rows_per_shard: int = 2_000
) -> list[Path]:
    """Write ``out_dir/reinforced-NNNNN.tar``: per image ``KEY.png|jpg``, ``KEY.cls`` (label),
    ``KEY.json`` (id, content hash, one object per view: params by name, partner, top-k
    classes and probabilities). Rows without views (errors) are skipped and counted in
    ``out_dir/export.json``."""
    m = open_manifest(manifest)
    need = [S.ID, S.IMAGE, CONTENT_HASH, AUG_PARAMS, AUG_PARTNER, SOFT_CLASSES, SOFT_PROBS]
    missing = [c for c in need if c not in m.schema.names]
    if missing:
        raise ManifestError(
            f"{m.path}: not a reinforced manifest (no {missing}); run `curate reinforce` first."
        )
    cols = need + ([S.LABEL] if S.LABEL in m.schema.names else [])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    augs = m.schema.field(AUG_PARAMS).type.list_size // P
    shards: list[Path] = []
    written = skipped = 0
    pending: list[dict] = []

    def flush() -> None:
        shards.append(out / f"reinforced-{len(shards):05d}.tar")
        with tarfile.open(shards[-1], "w") as tar:
            for r in pending:
                _write_row(tar, r, augs)
        pending.clear()

    for batch in m.iter_batches(cols, batch_size=1024):
        for row in batch.to_pylist():
            if row[SOFT_PROBS] is None:
                skipped += 1
                continue
            pending.append(row)
            written += 1
            if len(pending) == rows_per_shard:
                flush()
    if pending:
        flush()
    summary = {"rows": written, "skipped_without_views": skipped, "shards": len(shards)}
    (out / "export.json").write_text(json.dumps(summary, indent=2))
    return shards


def _write_row(tar: tarfile.TarFile, row: dict, augs: int) -> None:
    key = f"{row[S.ID]}".replace("/", "_").replace(".", "_")
    params = np.asarray(row[AUG_PARAMS], np.float32).reshape(augs, P)
    k = len(row[SOFT_CLASSES]) // augs
    views = []
    for a in range(augs):
        views.append(
            {
                "params": dict(zip(PARAM_NAMES, params[a].round(6).tolist(), strict=True)),
                "partner": row[AUG_PARTNER][a],
                "classes": row[SOFT_CLASSES][a * k : (a + 1) * k],
                "probs": [round(float(p), 5) for p in row[SOFT_PROBS][a * k : (a + 1) * k]],
            }
        )
    _add(tar, f"{key}.{_ext(row[S.IMAGE])}", row[S.IMAGE])
    if row.get(S.LABEL) is not None:
        _add(tar, f"{key}.cls", str(row[S.LABEL]).encode())
    meta = {"id": row[S.ID], "content_hash": row[CONTENT_HASH], "views": views}
    _add(tar, f"{key}.json", json.dumps(meta).encode())
