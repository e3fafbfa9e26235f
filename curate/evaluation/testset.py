"""Pick the test set (a manifest, a split of the pool, or a seeded held-out fraction) and check
that its classes are the pool's."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from curate.errors import InputError, ManifestError
from curate.evaluation.config import EvaluateConfig
from curate.evaluation.data import IN_TEST, Rows, check_same_features, load_rows
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest

#: Seed stream of the ``test_fraction`` hold-out (the random baseline uses another).
TEST_STREAM = 3


@dataclass
class TestSet:
    """The test rows' raw features and labels, and what the result records about them."""

    features: np.ndarray
    labels: np.ndarray
    info: dict


def choose_test(
    pool: Rows, test: str | os.PathLike | Manifest | None, cfg: EvaluateConfig
) -> TestSet:
    """The test set; marks the pool rows it uses (or shares ids with) as ``test``."""
    given = [x is not None for x in (test, cfg.test_split, cfg.test_fraction)]
    if sum(given) != 1:
        raise InputError(
            "give exactly one test set: --test MANIFEST (test= in Python), --test-split SPLIT "
            "(rows of POOL whose split column equals it) or --test-fraction F (a seeded held-out "
            f"fraction of POOL); got {sum(given)}."
        )
    if test is not None:
        return _from_manifest(pool, open_manifest(test), cfg)
    if cfg.test_split is not None:
        mask = _split_mask(pool.manifest, cfg.test_split)
        source = f"split = {cfg.test_split!r} of {pool.manifest.path}"
    else:
        mask = _held_out(pool, cfg.test_fraction, cfg.test_seed)
        source = f"seeded {cfg.test_fraction:g} of {pool.manifest.path} (test_seed {cfg.test_seed})"
    excluded = pool.excluded(mask)
    use = mask & pool.usable
    out = TestSet(pool.features[use], pool.labels[use], {})
    pool.reason[mask] = IN_TEST
    out.info = {"source": source, "rows": int(use.sum()), "excluded": excluded}
    return out


def _from_manifest(pool: Rows, m: Manifest, cfg: EvaluateConfig) -> TestSet:
    from curate.evaluation.models import MODELS

    needs = MODELS[cfg.model].needs
    t = load_rows(m, needs=needs, embedding_column=cfg.embedding_column, role="the test set")
    check_same_features(pool, t, needs=needs, column=cfg.embedding_column)
    pool_names, test_names = pool.manifest.class_names, m.class_names
    if pool_names and test_names and pool_names != test_names:
        raise InputError(
            f"{m.path} (test set): class names {test_names} differ from POOL's {pool_names}; "
            "the test set must label the same classes with the same ids."
        )
    shared = pc.is_in(pool.ids, value_set=t.ids).to_numpy(zero_copy_only=False)
    pool.reason[shared] = IN_TEST  # a test row is never trained on, nor drawn at random
    use = t.usable
    info = {
        "source": str(m.path),
        "rows": int(use.sum()),
        "excluded": t.excluded(np.ones_like(use)),
    }
    info["pool_rows_shared"] = int(shared.sum())
    return TestSet(t.features[use], t.labels[use], info)


def _split_mask(m: Manifest, split: str) -> np.ndarray:
    if S.SPLIT not in m.schema.names:
        raise ManifestError(
            f"{m.path}: --test-split needs a 'split' column and POOL has none; pass --test "
            "MANIFEST or --test-fraction F instead."
        )
    col = m.read([S.SPLIT])[S.SPLIT].combine_chunks()
    mask = pc.fill_null(pc.equal(col, split), False).to_numpy(zero_copy_only=False)
    if not mask.any():
        have = sorted(str(v) for v in pc.unique(col.drop_null()).to_pylist())
        raise InputError(f"{m.path}: no row has split = {split!r}; its splits are {have}.")
    return mask


def _held_out(pool: Rows, fraction: float, seed: int) -> np.ndarray:
    candidates = np.flatnonzero(pool.usable)
    n = round(fraction * len(candidates))
    if n < 1 or n >= len(candidates):
        raise InputError(
            f"{pool.manifest.path}: --test-fraction {fraction:g} of {len(candidates)} usable "
            "rows leaves no test or no training row; choose a fraction like 0.2."
        )
    rng = np.random.default_rng([TEST_STREAM, seed])
    mask = np.zeros(len(pool.reason), bool)
    mask[rng.choice(candidates, n, replace=False)] = True
    return mask


def class_names(pool: Rows, test: TestSet) -> list[str]:
    """The class names (the pool's, else ``"0"``, ``"1"``, ...), after checking that every
    test class is a class some usable pool row has."""
    train_labels = pool.labels[pool.usable]
    if not len(test.labels):
        raise InputError(f"{test.info['source']}: the test set has no usable row.")
    missing = np.setdiff1d(np.unique(test.labels), np.unique(train_labels))
    names = pool.manifest.class_names
    if missing.size:
        shown = [names[k] if names and k < len(names) else int(k) for k in missing]
        raise InputError(
            f"{test.info['source']}: the test set has class(es) {shown} that no usable row of "
            f"POOL ({pool.manifest.path}) has; test on the pool's classes (same ids, same names)."
        )
    n = max(int(train_labels.max()), int(test.labels.max())) + 1
    if names and len(names) >= n:
        return list(names)
    return [str(k) for k in range(n)]
