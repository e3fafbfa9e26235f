"""One batch through the encoder, and the per-chunk accumulation of its output columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S

TEXT_COLUMNS = (S.TEXT, "caption")
TEXT_EMBEDDING = "text_embedding"
CLIP_SCORE = "clip_score"
ERROR_PREFIX = "embed: "


def text_column(schema: pa.Schema) -> str | None:
    """The manifest's text column (``text``, else ``caption``), or None."""
    for name in TEXT_COLUMNS:
        if name in schema.names and pa.types.is_string(schema.field(name).type):
            return name
        if name in schema.names and pa.types.is_large_string(schema.field(name).type):
            return name
    return None


class ChunkResult:
    """Embeddings, validity and errors of one input chunk, gathered batch by batch."""

    def __init__(self, index: int, table: pa.Table) -> None:
        self.index, self.table = index, table
        self.rows_done = 0
        self._emb: list = []
        self._valid: list[np.ndarray] = []
        self._errors: list = []
        self._temb: list = []
        self._tvalid: list[np.ndarray] = []
        self._score: list = []

    def add(self, emb, valid: np.ndarray, errors: list, text=None) -> None:
        """Append one batch: device tensors stay on the device until the chunk is written."""
        self._emb.append(emb)
        self._valid.append(valid)
        self._errors.extend(errors)
        if text is not None:
            temb, tvalid, score = text
            self._temb.append(temb)
            self._tvalid.append(tvalid)
            self._score.append(score)
        self.rows_done += len(errors)

    def to_table(self, schema: pa.Schema, dtype: str) -> pa.Table:
        """The output shard: input columns, merged ``error``, the new embedding columns."""
        import torch

        valid = np.concatenate(self._valid)
        cols = {
            S.EMBEDDING: _vectors(torch.cat(self._emb).cpu().numpy(), valid, dtype),
            S.ERROR: merge_errors(self.table, self._errors),
        }
        if self._temb:
            tvalid = np.concatenate(self._tvalid)
            cols[TEXT_EMBEDDING] = _vectors(torch.cat(self._temb).cpu().numpy(), tvalid, dtype)
            score = torch.cat(self._score).cpu().numpy().astype(np.float32)
            cols[CLIP_SCORE] = pa.array(score, mask=~(valid & tvalid))
        arrays = []
        for field in schema:
            col = cols[field.name] if field.name in cols else self.table.column(field.name)
            arrays.append(col if col.type == field.type else col.cast(field.type))
        return pa.Table.from_arrays(arrays, schema=schema)


def _vectors(values: np.ndarray, valid: np.ndarray, dtype: str) -> pa.Array:
    flat = pa.array(values.astype(np.dtype(dtype)).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1], mask=pa.array(~valid))


def merge_errors(table: pa.Table, new: list, prefix: str = ERROR_PREFIX) -> pa.Array:
    """The batch's ``error`` column with this step's ``(kind, detail)`` failures appended as
    ``PREFIX KIND: detail`` (after an earlier step's message, ``; ``-separated)."""
    before = table.column(S.ERROR).to_pylist() if S.ERROR in table.column_names else None
    out = []
    for i, err in enumerate(new):
        prev = before[i] if before is not None else None
        msg = None if err is None else f"{prefix}{err[0]}: {err[1]}"
        out.append(msg if prev is None else (prev if msg is None else f"{prev}; {msg}"))
    return pa.array(out, type=pa.string())


def embed_batch(enc, pixels, errors: list, part: pa.Table, text_col: str | None, acc) -> None:
    """Encode the decodable images of one batch (and its texts) into ``acc``."""
    import torch

    n = len(errors)
    valid = np.fromiter((e is None for e in errors), dtype=bool, count=n)
    emb = torch.zeros((n, enc.dim), dtype=torch.float32, device=enc.device)
    idx = np.flatnonzero(valid)
    if idx.size:
        x = _to_device(pixels, enc.device)
        if idx.size < n:
            x = x[torch.from_numpy(idx).to(x.device)]
        emb[torch.from_numpy(idx).to(emb.device)] = enc.encode_images(x)
    text = None
    if text_col is not None:
        text = _embed_texts(enc, part.column(text_col).to_pylist(), emb, valid)
    acc.add(emb, valid, errors, text)


def _to_device(pixels, device: str):
    """Worker output (NHWC uint8 numpy) -> NCHW on the device; device tensors pass through."""
    import torch

    if not isinstance(pixels, np.ndarray):
        if pixels.is_cuda:  # made on the decoder's side stream: keep it alive for this one
            pixels.record_stream(torch.cuda.current_stream(pixels.device))
        return pixels
    x = torch.from_numpy(pixels)
    if device.startswith("cuda"):
        x = x.pin_memory().to(device, non_blocking=True)
    return x.permute(0, 3, 1, 2)  # a channels_last view, no copy


def _embed_texts(enc, texts: list, emb, valid: np.ndarray):
    import torch

    n = len(texts)
    tvalid = np.fromiter((isinstance(t, str) and bool(t.strip()) for t in texts), bool, count=n)
    temb = torch.zeros((n, enc.dim), dtype=torch.float32, device=enc.device)
    tidx = np.flatnonzero(tvalid)
    if tidx.size:
        temb[torch.from_numpy(tidx).to(temb.device)] = enc.encode_text([texts[i] for i in tidx])
    score = (emb * temb).sum(dim=-1)
    return temb, tvalid, score
