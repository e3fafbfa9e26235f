"""What the image formats share: each row's image bytes as stored, their file extension, a
file name from the id, the rows skipped (and why), and the index of what went where."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa

from curate.errors import ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.manifests.writer import ManifestWriter
from curate.pipelines.export.config import ExportConfig

#: The index an image export writes beside its files: a manifest of the exported rows.
INDEX = "index.parquet"
#: Leading bytes of the formats written with their own extension.
_MAGIC = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
    (b"P5", "pgm"),
    (b"P6", "ppm"),
)
_PIL_EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "BMP": "bmp", "TIFF": "tif", "WEBP": "webp"}
#: Extensions taken off an id before it names a file (the bytes decide the extension).
_ID_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp", "ppm", "pgm"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_STEM = 96


def image_ext(data: bytes) -> str | None:
    """The extension of encoded image bytes (``jpg``, ``png``, ...), or None if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return _PIL_EXT.get(im.format or "", (im.format or "").lower() or None)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def file_stem(row_id: str) -> str:
    """A file name (and WebDataset key: no dots, no slashes) for a row id.

    An image extension at the end of the id is dropped and characters other than letters,
    digits, ``_`` and ``-`` become ``_``; an id changed that way gets a hash of itself
    appended, so different ids never share a name: ``cat/001.jpg`` -> ``cat_001-<12 hex>``.
    """
    head, _, last = row_id.rpartition("/")
    stem, dot, ext = last.rpartition(".")
    base = (f"{head}/{stem}" if head else stem) if dot and ext.lower() in _ID_EXTS else row_id
    safe = _UNSAFE.sub("_", base)[:_MAX_STEM] or "_"
    if safe == row_id:
        return safe
    return f"{safe}-{hashlib.blake2b(row_id.encode(), digest_size=6).hexdigest()}"


class ImageWriter:
    """Base of the image formats: ``write`` takes batches of rows, skips (and counts) rows
    without a usable image, hands the others to ``_put`` and indexes every row it saw.

    Parameters
    ----------
    root
        The folder written (the staging folder that becomes the output when whole).
    manifest, config
        What is exported and how.
    """

    name = ""

    def __init__(self, root: Path, manifest: Manifest, config: ExportConfig) -> None:
        self.root, self.manifest, self.config = root, manifest, config
        names = manifest.schema.names
        if S.IMAGE not in names and S.PATH not in names:
            raise ManifestError(
                f"{manifest.path}: no image or path column, so there are no images to export "
                f"as {self.name}; export the rows with --format parquet, or ingest the images."
            )
        self.has_label = S.LABEL in names
        self.exported = 0
        self.skipped: Counter[str] = Counter()
        fields = [pa.field(S.ID, pa.string())]
        fields += [pa.field(S.LABEL, pa.int64())] if self.has_label else []
        fields += [pa.field(n, pa.string()) for n in ("file", "key", "skip_reason")]
        schema = S.with_class_names(pa.schema(fields), manifest.class_names)
        self.index = ManifestWriter(root / INDEX, schema=schema)

    def columns(self) -> list[str]:
        """The manifest columns ``write`` needs."""
        wanted = (S.ID, S.IMAGE, S.PATH, S.LABEL, S.ERROR)
        return [c for c in wanted if c in self.manifest.schema.names]

    def write(self, table: pa.Table) -> None:
        """Write the images of one batch and index its rows."""
        index: dict[str, list] = {name: [] for name in self.index.schema.names}
        for row in table.to_pylist():
            data, ext, reason = self._image(row)
            reason = reason or self._skip(row)
            file = key = None
            if reason is None:
                file, key = self._put(row, data, ext)
                self.exported += 1
            else:
                self.skipped[reason] += 1
            values = {"file": file, "key": key, "skip_reason": reason}
            for name, column in index.items():
                column.append(values[name] if name in values else row.get(name))
        self.index.write(pa.table(index, schema=self.index.schema))

    def _image(self, row: dict) -> tuple[bytes | None, str | None, str | None]:
        """``(bytes, extension, None)``, or a skip reason: an error, no image, unknown bytes."""
        if row.get(S.ERROR) is not None:
            return None, None, "error"
        data = row.get(S.IMAGE)
        if data is None and row.get(S.PATH):
            data = self._read_path(row[S.PATH])
        if not data:
            return None, None, "no_image"
        ext = image_ext(data)
        return (data, ext, None) if ext else (None, None, "unknown_image_format")

    def _read_path(self, path: str) -> bytes | None:
        """The file at ``path``: as given (absolute, or from the working directory), else
        relative to the folder holding the manifest; None if neither can be read."""
        base = self.manifest.path if self.manifest.path.is_dir() else self.manifest.path.parent
        for candidate in (Path(path), base / path):
            try:
                return candidate.read_bytes()
            except OSError:
                continue
        return None

    def _skip(self, row: dict) -> str | None:
        """A format's own reason to skip a row with a good image (None: write it)."""
        return None

    def _put(self, row: dict, data: bytes, ext: str) -> tuple[str, str]:
        """Write one row's files; returns ``(file, key)`` for the index."""
        raise NotImplementedError

    def counts(self) -> dict:
        """Rows exported and skipped by reason, plus the format's own counts."""
        return {"exported": self.exported, "skipped": dict(self.skipped)}

    def close(self) -> None:
        """Finish the files and the index."""
        self.index.close()

    def abort(self) -> None:
        self.index.abort()
