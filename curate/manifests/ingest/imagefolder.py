"""ImageFolder trees (``class_name/image.jpg``, optionally under ``train/``, ``val/``...)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pyarrow as pa

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.ingest.base import Adapter, IngestContext
from curate.manifests.ingest.images import IMAGE_EXTENSIONS, read_and_probe, read_files

SPLIT_NAMES = frozenset({"train", "training", "val", "valid", "validation", "test", "testing"})
CHUNK = 256  # files per task sent to a worker process


def _unlistable(exc: OSError) -> InputError:
    """A folder of the source that cannot be listed: its files would go missing unseen."""
    return InputError(
        f"{exc.filename}: cannot list this folder ({exc.strerror}); make it readable "
        "(chmod u+rx) or move it out of the input, so that none of its images is left out."
    )


def _visible_dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise _unlistable(exc) from exc


def _raise_unlistable(exc: OSError) -> None:
    raise _unlistable(exc) from exc


def _walk_files(root: Path | str) -> Iterator[str]:
    """Every visible file under ``root``, depth first, in sorted order, lazily (as strings:
    pathlib costs more than reading a small image); a folder that cannot be listed is an
    error, not a silent gap."""
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise_unlistable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield os.path.join(dirpath, name)


def _has_images(path: Path, limit: int = 1000) -> bool:
    files = islice(_walk_files(path), limit)
    return any(os.path.splitext(p)[1].lower() in IMAGE_EXTENSIONS for p in files)


def _layout(src: Path) -> tuple[list[tuple[str | None, Path]], list[str]]:
    """The (split, split folder) pairs and the sorted class names of a tree."""
    top = _visible_dirs(src)
    if (
        top
        and all(d.name.lower() in SPLIT_NAMES for d in top)
        and all(_visible_dirs(d) for d in top)
    ):
        roots: list[tuple[str | None, Path]] = [(d.name, d) for d in top]
    else:
        roots = [(None, src)]
    names = sorted({c.name for _, root in roots for c in _visible_dirs(root)})
    return roots, names


SCHEMA_FIELDS = [
    pa.field(S.ID, pa.string()),
    pa.field(S.PATH, pa.string()),
    pa.field(S.IMAGE, pa.binary()),
    pa.field(S.LABEL, pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field(S.ERROR, pa.string()),
]


class ImageFolderAdapter(Adapter):
    """One row per file under a class folder: ``label`` is the index of the sorted class names.

    Every visible file below a class folder becomes a row (a file that is not a readable image
    keeps its row with ``error`` set); files directly in the root are counted and skipped.
    """

    name = "imagefolder"

    def detect(self, src: Path) -> bool:
        return src.is_dir() and any(_has_images(d) for d in _visible_dirs(src))

    def _items(
        self, ctx: IngestContext, roots, names
    ) -> Iterator[tuple[str, str, int, str | None]]:
        index = {n: i for i, n in enumerate(names)}
        src = str(ctx.src)
        base = str(ctx.src.resolve())  # resolved once: per-file resolve() is a syscall per part
        for split, root in roots:
            stray = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
            if stray:
                ctx.note("files outside class folders (skipped)", len(stray))
            for class_dir in _visible_dirs(root):
                label = index[class_dir.name]
                for f in _walk_files(class_dir):
                    rel = os.path.relpath(f, src) if not f.startswith(src) else f[len(src) + 1 :]
                    rel = rel.replace(os.sep, "/")
                    yield rel, f"{base}/{rel}", label, split

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        if not ctx.src.is_dir():
            raise InputError(f"{ctx.src}: an imagefolder source must be a directory.")
        roots, names = _layout(ctx.src)
        if not names:
            raise InputError(
                f"{ctx.src}: no class folders found; an ImageFolder tree looks like "
                "ROOT/class_name/image.jpg."
            )
        split_const = ctx.config.split
        fields = list(SCHEMA_FIELDS)
        has_split = split_const is not None or roots[0][0] is not None
        if has_split:
            fields.insert(4, pa.field(S.SPLIT, pa.string()))
        schema = S.with_class_names(pa.schema(fields), names)
        items = self._items(ctx, roots, names)
        pending: deque[list] = deque()

        def path_chunks() -> Iterator[list[str]]:
            for chunk in iter(lambda: list(islice(items, CHUNK)), []):
                pending.append(chunk)
                yield [c[1] for c in chunk]

        fn = read_and_probe if ctx.config.verify_images else read_files
        for probed in ctx.pool.imap(fn, path_chunks()):
            chunk = pending.popleft()
            cols = {
                S.ID: [c[0] for c in chunk],
                S.PATH: [c[1] for c in chunk],
                S.IMAGE: [p[0] for p in probed],
                S.LABEL: [c[2] for c in chunk],
                "width": [p[1] for p in probed],
                "height": [p[2] for p in probed],
                S.ERROR: [p[3] for p in probed],
            }
            if has_split:
                cols[S.SPLIT] = [c[3] or split_const for c in chunk]
            yield pa.Table.from_pydict(cols, schema=schema)
