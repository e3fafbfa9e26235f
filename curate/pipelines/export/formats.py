"""The export formats: an ImageFolder tree, WebDataset tar shards, and plain Parquet."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import ManifestError
from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.io import Manifest
from curate.manifests.writer import ManifestWriter
from curate.pipelines.export.config import ExportConfig
from curate.pipelines.export.images import ImageWriter, file_stem


class ImageFolderWriter(ImageWriter):
    """``ROOT/<class name>/<file stem>.<ext>``: one folder per class, named by the class
    names (by the zero-padded label where the manifest has none). Rows without a label are
    skipped (an ImageFolder has no place for them) and counted as ``no_label``."""

    name = "imagefolder"

    def __init__(self, root: Path, manifest: Manifest, config: ExportConfig) -> None:
        if S.LABEL not in manifest.schema.names:
            raise ManifestError(
                f"{manifest.path}: no label column, and an ImageFolder has one folder per "
                "class; export with --format webdataset or parquet, or ingest the labels."
            )
        super().__init__(root, manifest, config)
        self.folders = class_folders(manifest)
        self.made: set[str] = set()

    def _skip(self, row: dict) -> str | None:
        label = row.get(S.LABEL)
        return "no_label" if label is None or label < 0 else None

    def _put(self, row: dict, data: bytes, ext: str) -> tuple[str, str]:
        label = row[S.LABEL]
        folder = self.folders[label] if label < len(self.folders) else str(label)
        if folder not in self.made:
            (self.root / folder).mkdir(exist_ok=True)
            self.made.add(folder)
        stem = file_stem(row[S.ID])
        file = f"{folder}/{stem}.{ext}"
        (self.root / file).write_bytes(data)
        return file, stem

    def counts(self) -> dict:
        out = super().counts()
        out["classes"] = len(self.made)
        names = self.manifest.class_names
        if names:
            # torchvision numbers the folders in sorted order; say when that is not ours
            out["folder_order_matches_labels"] = sorted(self.folders) == list(self.folders)
        return out


def class_folders(manifest: Manifest) -> list[str]:
    """Folder name per label index: the class names made safe for a file system (unique),
    else the labels zero-padded to one width (``07``, ``12``) so they sort as numbers."""
    names = manifest.class_names
    if names:
        folders: list[str] = []
        for name in names:
            safe = name.replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
            safe = f"_{safe}" if not safe or safe.startswith(".") else safe
            folders.append(safe if safe not in folders else f"{safe}_{len(folders)}")
        return folders
    top = 0
    for batch in manifest.iter_batches([S.LABEL], batch_size=1 << 16):
        top = max(top, pc.max(batch.column(0)).as_py() or 0)
    return [str(i).zfill(len(str(top))) for i in range(top + 1)]


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class WebDatasetWriter(ImageWriter):
    """Tar shards ``ROOT/shard-NNNNNN.tar`` of ``shard_size`` samples: ``KEY.<ext>`` (the
    image as stored), ``KEY.cls`` (the label), ``KEY.json`` (the manifest's scalar columns)
    and ``KEY.txt`` (the caption, ``text``) where present; ``KEY`` from the id (see
    :func:`~curate.pipelines.export.images.file_stem`)."""

    name = "webdataset"

    def __init__(self, root: Path, manifest: Manifest, config: ExportConfig) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, manifest, config)
        self.scalars = [
            f.name
            for f in manifest.schema
            if not pa.types.is_nested(f.type) and not _is_bytes(f.type)
        ]
        self.tar: tarfile.TarFile | None = None
        self.shards = 0
        self.in_shard = 0

    def columns(self) -> list[str]:
        return list(dict.fromkeys([*super().columns(), *self.scalars]))

    def _put(self, row: dict, data: bytes, ext: str) -> tuple[str, str]:
        if self.tar is None or self.in_shard >= self.config.shard_size:
            self._next_shard()
        key = file_stem(row[S.ID])
        self._add(f"{key}.{ext}", data)
        if row.get(S.LABEL) is not None:
            self._add(f"{key}.cls", str(row[S.LABEL]).encode())
        meta = {c: _json_value(row.get(c)) for c in self.scalars}
        self._add(f"{key}.json", json.dumps(meta, default=str).encode())
        if row.get(S.TEXT) is not None:
            self._add(f"{key}.txt", str(row[S.TEXT]).encode())
        self.in_shard += 1
        return self.shard_name(self.shards - 1), key

    def shard_name(self, index: int) -> str:
        return f"shard-{index:06d}.tar"

    def _next_shard(self) -> None:
        if self.tar is not None:
            self.tar.close()
        self.tar = tarfile.TarFile(self.root / self.shard_name(self.shards), "w")
        self.shards += 1
        self.in_shard = 0

    def _add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o444
        self.tar.addfile(info, io.BytesIO(data))

    def counts(self) -> dict:
        return {**super().counts(), "shards": self.shards}

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        super().close()

    def abort(self) -> None:
        if self.tar is not None:
            self.tar.close()
        super().abort()


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def float_list_field(field: pa.Field) -> pa.Field:
    """A vector field (``FixedSizeList<float16|32>``) as ``list<float32>``: what pandas,
    Hugging Face datasets and a bare DuckDB read as numbers; other fields unchanged."""
    if not V.is_vector_type(field.type):
        return field
    return pa.field(field.name, pa.list_(pa.float32()), field.nullable, metadata=field.metadata)


class ParquetWriter:
    """Every column of the selected rows, vectors as ``list<float32>``, class names in the
    schema metadata: one ``.parquet`` file, or a folder of ``part-NNNNN.parquet`` shards."""

    name = "parquet"

    def __init__(self, path: Path, manifest: Manifest, config: ExportConfig) -> None:
        self.manifest = manifest
        fields = [float_list_field(f) for f in manifest.schema]
        self.schema = pa.schema(fields, metadata=manifest.schema.metadata)
        self.writer = ManifestWriter(path, schema=self.schema)
        self.exported = 0

    def columns(self) -> list[str]:
        return list(self.manifest.schema.names)

    def write(self, table: pa.Table) -> None:
        self.writer.write(table.cast(self.schema))
        self.exported += table.num_rows

    def counts(self) -> dict:
        return {"exported": self.exported, "skipped": {}}

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


#: Format name -> writer class.
WRITERS: dict[str, type] = {
    "imagefolder": ImageFolderWriter,
    "webdataset": WebDatasetWriter,
    "parquet": ParquetWriter,
}
