"""Turn each subset SPEC (a prune output, a manifest, a DuckDB WHERE clause) into a row mask."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest

#: A subset is a manifest path (its ``keep`` column, else its ids), a WHERE expression over
#: the pool, or a boolean mask over the pool's rows.
SubsetSpec = str | os.PathLike | Manifest | np.ndarray

KEEP = "keep"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+\-]*$")
_SHOWN_IDS = 3


def parse_subset(text: str) -> tuple[str, str]:
    """``"NAME=SPEC"`` (the CLI's ``--subset``) as ``(name, spec)``."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec or not _NAME.match(name):
        raise InputError(
            f"--subset {text!r}: write NAME=SPEC, NAME being letters, digits, _ . @ + -; SPEC a "
            'prune output or manifest path, or a WHERE expression over POOL: --subset "clean=NOT '
            'flipped", --subset dbp=out/pruned.'
        )
    return name, spec


def named_subsets(subsets: Mapping[str, SubsetSpec] | Sequence[str]) -> dict[str, SubsetSpec]:
    """``{name: spec}`` from a mapping or from ``"NAME=SPEC"`` strings; names must be unique."""
    if isinstance(subsets, Mapping):
        out = dict(subsets)
    else:
        out = {}
        for text in subsets:
            name, spec = parse_subset(text)
            if name in out:
                raise InputError(f"--subset {name!r} is given twice; give each subset a new name.")
            out[name] = spec
    if not out:
        raise InputError(
            "no subset to evaluate: pass at least one --subset NAME=SPEC (e.g. --subset "
            "dbp=out/pruned), subsets= in Python."
        )
    return out


def _looks_like_path(spec: str) -> bool:
    return " " not in spec.strip() and (
        spec.endswith((".parquet", "/")) or os.sep in spec and not spec.startswith("(")
    )


def resolve_subset(name: str, spec: SubsetSpec, pool: Manifest, ids: pa.Array) -> np.ndarray:
    """The boolean mask over ``pool``'s rows that ``spec`` selects.

    ``ids`` is the pool's ``id`` column. Raises :class:`InputError` naming the subset when the
    spec selects ids the pool lacks, selects nothing, or is neither a manifest nor valid SQL.
    """
    if isinstance(spec, np.ndarray):
        mask = _from_mask(name, spec, len(ids))
    elif isinstance(spec, Manifest) or Path(spec).exists():
        mask = _from_manifest(name, open_manifest(spec), ids)
    elif isinstance(spec, os.PathLike) or _looks_like_path(str(spec)):
        raise InputError(
            f"subset {name!r}: {spec}: no such manifest; check the path (or, for a WHERE "
            "expression over POOL, write it with spaces, e.g. 'label = 3')."
        )
    else:
        mask = _from_sql(name, str(spec), pool, ids)
    if not mask.any():
        raise InputError(
            f"subset {name!r} ({spec if not isinstance(spec, np.ndarray) else 'mask'}) selects "
            "no row of the pool; pass a subset with at least one row (a prune output keeps "
            "rows where keep is true)."
        )
    return mask


def _from_mask(name: str, mask: np.ndarray, n: int) -> np.ndarray:
    if mask.dtype != bool or mask.shape != (n,):
        raise InputError(
            f"subset {name!r}: a mask must be a boolean array of the pool's {n} rows, got "
            f"{mask.dtype} of shape {mask.shape}."
        )
    return mask.copy()


def _positions(name: str, where: str, chosen: pa.Array, ids: pa.Array) -> np.ndarray:
    """The pool rows of ``chosen`` ids; unknown ids are an error naming a few of them."""
    pos = pc.index_in(chosen, value_set=ids)
    if pos.null_count:
        unknown = chosen.filter(pos.is_null())
        shown = ", ".join(repr(v) for v in unknown[:_SHOWN_IDS].to_pylist())
        raise InputError(
            f"subset {name!r} ({where}): {len(unknown)} of its {len(chosen)} ids are not in the "
            f"pool (e.g. {shown}); a subset must be rows of POOL: prune POOL itself, or pass the "
            "manifest POOL was made from."
        )
    mask = np.zeros(len(ids), bool)
    mask[pos.to_numpy(zero_copy_only=False)] = True
    return mask


def _from_manifest(name: str, m: Manifest, ids: pa.Array) -> np.ndarray:
    m.validate(hint=f" (subset {name!r})")
    columns = [S.ID, KEEP] if KEEP in m.schema.names else [S.ID]
    t = m.read(columns)
    chosen = t[S.ID].combine_chunks()
    if KEEP in columns:
        keep = t[KEEP].combine_chunks()
        if not pa.types.is_boolean(keep.type):
            raise InputError(
                f"subset {name!r} ({m.path}): column 'keep' is {keep.type}, not boolean; pass a "
                "`curate prune` output, or a manifest of the subset's rows without 'keep'."
            )
        chosen = chosen.filter(pc.fill_null(keep, False))
    return _positions(name, str(m.path), chosen, ids)


def _from_sql(name: str, where: str, pool: Manifest, ids: pa.Array) -> np.ndarray:
    import duckdb

    from curate.manifests.catalog import connect

    con = connect({"pool": pool})
    try:
        chosen = con.sql(f"SELECT id FROM pool WHERE ({where})").to_arrow_table()
    except duckdb.Error as exc:
        why = " ".join(str(exc).split())  # one line
        raise InputError(
            f"subset {name!r}: {where!r} is no existing manifest path and no valid DuckDB WHERE "
            f"expression over POOL ({why}). Pass a prune output / manifest path, or an expression "
            f'over the pool\'s columns {pool.schema.names}, e.g. --subset "clean=NOT flipped".'
        ) from exc
    finally:
        con.close()
    return _positions(name, f"WHERE {where}", chosen[S.ID].combine_chunks(), ids)
