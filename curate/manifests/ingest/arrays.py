"""Numpy arrays of images and labels (MNIST-like): an ``.npz``, or an ``.npy`` pair."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.ingest import columns as C
from curate.manifests.ingest.base import Adapter, IngestContext
from curate.manifests.ingest.images import encode_png
from curate.manifests.ingest.labels import StringLabels

IMAGE_KEYS = ("images", "image", "x", "X", "data", "arr_0")
LABEL_KEYS = ("labels", "label", "y", "Y", "targets", "target", "arr_1")
CHUNK = 512


#: What numpy raises for an empty, truncated, corrupt or unreadable array file.
NUMPY_READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)


def array_problem(path: Path, exc: BaseException, *, what: str, fix: str) -> InputError:
    """The error for an array file numpy could not read: the file, what is wrong, the fix."""
    if isinstance(exc, PermissionError):
        why = "permission denied (make it readable: chmod u+r)"
    elif path.is_file() and path.stat().st_size == 0:
        why = "the file is empty (0 bytes)"
    elif "pickled" in str(exc):  # numpy found neither an .npy nor a zip header
        why = f"not a readable {what} (no numpy or zip header: corrupt, or another format)"
    else:
        why = f"not a readable {what} ({' '.join(str(exc).split())})"
    return InputError(f"{path}: {why}; {fix}.")


def load_npy(path: Path, *, option: str, mmap: bool = False) -> np.ndarray:
    """An ``.npy`` array (memory-mapped with ``mmap``); an unreadable file names ``option``."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except NUMPY_READ_ERRORS as exc:
        fix = f"save it with numpy.save (and check {option})"
        raise array_problem(path, exc, what=".npy array", fix=fix) from exc


def _load_npz(path: Path, column_map: dict[str, str]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {column_map.get(k, k): z[k] for k in z.files}
    except NUMPY_READ_ERRORS as exc:
        fix = "save it with numpy.savez (images=..., labels=...)"
        raise array_problem(path, exc, what=".npz archive", fix=fix) from exc
    missing = [k for k in column_map if k not in set(z.files)]
    if missing:
        raise InputError(f"{path}: --map names key(s) {missing}; the archive holds {z.files}.")
    return arrays


def _pairs(
    arrays: dict[str, np.ndarray], source: Path
) -> list[tuple[str | None, np.ndarray, np.ndarray | None]]:
    """(split, images, labels) triples: ``x_train``/``y_train`` style or one images/labels pair."""
    splits = sorted(k[2:] for k in arrays if k.startswith("x_") and f"y_{k[2:]}" in arrays)
    if splits:
        return [(s, arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in splits]
    img = next((k for k in IMAGE_KEYS if k in arrays), None)
    if img is None:
        raise InputError(
            f"{source}: no images array; expected one of {list(IMAGE_KEYS)} or "
            f"x_<split>/y_<split>, "
            f"found {sorted(arrays)}. Name yours with --map, e.g. --map {sorted(arrays)[0]}=images."
        )
    lab = next((k for k in LABEL_KEYS if k in arrays), None)
    return [(None, arrays[img], arrays[lab] if lab else None)]


def _check(images: np.ndarray, labels: np.ndarray | None, source: Path, split: str | None) -> None:
    where = f"{source}" + (f" (split {split})" if split else "")
    if images.dtype != np.uint8:
        raise InputError(
            f"{where}: images must be uint8 (0-255), found {images.dtype}; convert them, e.g. "
            "(x * 255).round().astype(np.uint8) for floats in [0, 1]."
        )
    ok_shape = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3, 4))
    if not ok_shape:
        raise InputError(
            f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
            f"found {images.shape}. Channels-first data needs np.moveaxis(x, 1, -1)."
        )
    if labels is not None and (labels.ndim != 1 or len(labels) != len(images)):
        raise InputError(
            f"{where}: labels must have shape ({len(images)},) to match the images; found "
            f"{labels.shape}."
        )
    if labels is not None and not (np.issubdtype(labels.dtype, np.integer) or _is_text(labels)):
        raise InputError(
            f"{where}: labels must be integers or strings (class names), found {labels.dtype}."
        )


def _is_text(labels: np.ndarray | None) -> bool:
    return labels is not None and labels.dtype.kind in "US"


def _string_labels(parts: list, ctx: IngestContext) -> StringLabels | None:
    """The mapping of string labels (None for integer labels): the given names, or the
    sorted distinct names of every split."""
    if not any(_is_text(labels) for _, _, labels in parts):
        return None
    values = (pa.array(np.unique(y).astype(str)) for _, _, y in parts if y is not None)
    labels = StringLabels.plan(ctx.config.class_names, lambda: values)
    ctx.labels = labels.record()
    return labels


def _label_column(y: np.ndarray, mapping: StringLabels | None, *, source: str, start: int):
    """One chunk of a labels array as the ``label`` column (strings mapped to indices)."""
    if _is_text(y):
        return mapping.encode(pa.array(y.astype(str)), source=source, row_offset=start)
    return pa.array(np.asarray(y, np.int64))


def read_class_names(value: str | list[str]) -> list[str]:
    """Class names from ``a,b,c`` or from a file with one name per line."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    path = Path(value)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{path}: cannot read the --class-names file ({exc}); give a UTF-8 text file "
                "with one name per line, or the names inline: --class-names cat,dog."
            ) from exc
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]


class NumpyAdapter(Adapter):
    """Images (N, H, W[, C]) uint8 encoded as PNG; ``label`` from the labels array; ids are
    ``split/index`` (or ``index``). Keras-style ``x_train``/``y_train`` keys give splits."""

    name = "numpy"

    def detect(self, src: Path) -> bool:
        return src.is_file() and src.suffix in (".npz", ".npy")

    def _arrays(self, ctx: IngestContext) -> list[tuple[str | None, np.ndarray, np.ndarray | None]]:
        src = ctx.src
        if src.suffix == ".npz":
            return _pairs(_load_npz(src, ctx.config.column_map), src)
        images = load_npy(src, option="the input path", mmap=True)
        labels_path = ctx.config.labels
        if labels_path is None:
            guess = src.with_name(src.name.replace("images", "labels"))
            labels_path = guess if guess != src and guess.exists() else None
        if labels_path is not None and not labels_path.exists():
            raise InputError(f"{labels_path}: labels file does not exist; check --labels.")
        labels = load_npy(labels_path, option="--labels") if labels_path else None
        return [(ctx.config.split, images, labels)]

    def num_rows(self, ctx: IngestContext) -> int | None:
        return sum(len(x) for _, x, _ in self._arrays(ctx))

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        parts = self._arrays(ctx)
        for split, images, labels in parts:
            _check(images, labels, ctx.src, split)
        mapping = _string_labels(parts, ctx)
        names = mapping.class_names if mapping is not None else ctx.config.class_names
        meta = S.with_class_names(pa.schema([]), names).metadata
        for split, images, labels in parts:
            split = split or ctx.config.split
            prefix = f"{split}/" if split else ""
            starts = range(0, len(images), CHUNK)
            chunks = (np.asarray(images[s : s + CHUNK]) for s in starts)
            for start, encoded in zip(starts, ctx.pool.imap(encode_png, chunks), strict=True):
                n = len(encoded)
                data = {
                    S.ID: pa.array([f"{prefix}{i}" for i in range(start, start + n)], pa.string()),
                    S.IMAGE: pa.array([e[0] for e in encoded], pa.binary()),
                }
                if labels is not None:
                    y = labels[start : start + n]
                    data[S.LABEL] = _label_column(y, mapping, source=str(ctx.src), start=start)
                if split:
                    data[S.SPLIT] = pa.array([split] * n, pa.string())
                data["width"] = pa.array([e[1] for e in encoded], pa.int32())
                data["height"] = pa.array([e[2] for e in encoded], pa.int32())
                table = C.ensure_error(pa.table(data))
                C.check_labels(table, names, source=str(ctx.src), row_offset=start)
                yield table.replace_schema_metadata(meta)
