"""What a check run can do with the manifests it is given, decided (and bad input refused)
before any work: pixel checks need images, embedding checks an embedding column, leakage a
test split or ``--against`` another manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc

from curate.errors import InputError, ManifestError, require
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.pipelines import _embeddings as E
from curate.pipelines.check.config import CheckConfig
from curate.pipelines.embed.compat import check_same_embedding_model

DEFAULT_TEST_SPLIT = "test"


@dataclass(frozen=True)
class Plan:
    """Which checks run; ``notes`` are the one-line reasons for those skipped."""

    pixels: bool
    embeddings: bool
    test_split: str | None = None
    train_split: str | None = None
    splits: tuple[str, ...] = ()
    against: str | None = None
    against_pixels: bool = False
    against_embeddings: bool = False
    base_dir: str | None = None
    against_base_dir: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def leakage(self) -> bool:
        return self.test_split is not None or self.against is not None

    def record(self) -> dict:
        """For run.json: what ran and what was skipped."""
        return {
            "pixel_checks": self.pixels, "embedding_checks": self.embeddings,
            "test_split": self.test_split, "train_split": self.train_split,
            "against": self.against, "against_pixels": self.against_pixels,
            "against_embeddings": self.against_embeddings, "notes": list(self.notes),
        }  # fmt: skip


def has_images(m: Manifest) -> bool:
    """Whether the manifest has a column an image can come from (bytes or a local path)."""
    return bool({S.IMAGE, S.PATH} & set(m.schema.names))


def splits_present(m: Manifest) -> tuple[str, ...]:
    """The distinct non-null values of ``split``, sorted (one streaming pass over it)."""
    if S.SPLIT not in m.schema.names:
        return ()
    seen: set[str] = set()
    for batch in m.iter_batches([S.SPLIT]):
        seen.update(v for v in pc.unique(batch.column(0)).to_pylist() if v is not None)
    return tuple(sorted(seen))


def _split_plan(
    m: Manifest, cfg: CheckConfig, notes: list[str]
) -> tuple[str | None, str | None, tuple]:
    splits = splits_present(m)
    named = cfg.test_split is not None
    test = cfg.test_split if named else DEFAULT_TEST_SPLIT
    if test not in splits:
        if named:
            have = ", ".join(map(repr, splits)) if splits else "none (no split column)"
            raise InputError(
                f"{m.path}: no row has split {test!r} (--test-split); the splits present are "
                f"{have}."
            )
        if S.SPLIT in m.schema.names:
            notes.append(
                f"no split 'test' (splits: {', '.join(splits)}): split leakage not checked"
            )
        return None, None, splits
    if cfg.train_split is not None and cfg.train_split not in splits:
        raise InputError(
            f"{m.path}: no row has split {cfg.train_split!r} (--train-split); the splits present "
            f"are {', '.join(map(repr, splits))}."
        )
    if cfg.train_split is None and len(splits) < 2:
        notes.append(
            f"every row is split {test!r}: nothing to leak into, split leakage not checked"
        )
        return None, None, splits
    return test, cfg.train_split, splits


def _embedding_field(m: Manifest, column: str):
    if column not in m.schema.names:
        return None
    E.check_embedding_column(m, column)  # a float vector column from one model
    return m.schema.field(column)


def _against(m: Manifest, cfg: CheckConfig, emb_field, notes: list[str]) -> tuple[bool, bool]:
    ev = open_manifest(cfg.against).validate()
    ev_field = _embedding_field(ev, cfg.embedding_column)
    ev_pixels = has_images(ev) and has_images(m)
    ev_emb = emb_field is not None and ev_field is not None
    if ev_emb:
        check_same_embedding_model(
            emb_field, ev_field, sources=[str(m.path), str(ev.path)]
        )  # another model or dimension: an error naming both
    elif emb_field is not None or ev_field is not None:
        which = ev.path if ev_field is None else m.path
        notes.append(
            f"{which} has no {cfg.embedding_column!r} column: --against compares pixels only"
        )
    if not (ev_pixels or ev_emb):
        raise InputError(
            f"--against {ev.path}: nothing to compare: the two manifests share neither images "
            f"(image/path) nor an embedding column {cfg.embedding_column!r}. Run `curate embed` "
            "on both with the same --model."
        )
    return ev_pixels, ev_emb


def make_plan(m: Manifest, cfg: CheckConfig) -> Plan:
    """Decide what runs on ``m``; raise for input that cannot be checked as asked."""
    notes: list[str] = []
    pixels = has_images(m)
    if not pixels:
        notes.append(
            "no image or path column: pixel checks skipped (exact and perceptual duplicates, "
            "dark, light, blurry, low information, odd size, odd aspect ratio, grayscale)"
        )
    emb_field = _embedding_field(m, cfg.embedding_column)
    if emb_field is None:
        notes.append(
            f"no {cfg.embedding_column!r} column: embedding checks skipped (near-duplicates, "
            f"outliers, leakage by embedding); run `curate embed {m.path} -o OUT` first"
        )
    if not pixels and emb_field is None:
        raise ManifestError(
            f"{m.path}: nothing to check: no image/path column and no embedding column "
            f"{cfg.embedding_column!r} (it has {m.schema.names}). Ingest images with "
            f"`curate ingest`, or run `curate embed {m.path} -o OUT`."
        )
    require("faiss", "check", package="faiss-cpu")  # a missing extra fails before any work
    if pixels:
        require("imagehash", "check")
    test, train, splits = _split_plan(m, cfg, notes)
    ev_pixels = ev_emb = False
    if cfg.against is not None:
        ev_pixels, ev_emb = _against(m, cfg, emb_field, notes)
    return Plan(
        pixels=pixels, embeddings=emb_field is not None, test_split=test, train_split=train,
        splits=splits, against=str(cfg.against) if cfg.against else None,
        against_pixels=ev_pixels, against_embeddings=ev_emb, base_dir=str(_base(m)),
        against_base_dir=str(_base(open_manifest(cfg.against))) if cfg.against else None,
        notes=tuple(notes),
    )  # fmt: skip


def _base(m: Manifest) -> Path:
    """Where relative ``path`` values are looked up after the working directory (as embed
    does: the folder holding the manifest)."""
    return m.path.resolve().parent
