"""Refuse to compare embeddings that come from different models (or preprocessing)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from curate.errors import ManifestError
from curate.manifests import schema as S

#: Metadata keys that identify an embedding space; embeddings differing in any are not comparable.
IDENTITY_KEYS = ("model", "pretrained", "checkpoint_sha256", "preprocess")


def embedding_model(field: pa.Field) -> dict[str, str]:
    """The identity of an embedding field: model, pretrained, checkpoint, preprocess, dim."""
    info = S.embedding_info(field)
    out = {k: info[k] for k in IDENTITY_KEYS if k in info}
    dim = S.embedding_dim(field)
    if dim is not None:
        out["dim"] = str(dim)
    return out


def _describe(ident: dict[str, str]) -> str:
    keys = ("model", "pretrained", "dim", "checkpoint_sha256")
    parts = [
        f"{k}={ident[k][:16] if k == 'checkpoint_sha256' else ident[k]}" for k in keys if k in ident
    ]
    return ", ".join(parts) or "no model metadata"


def check_same_embedding_model(
    *fields: pa.Field, sources: Sequence[str] | None = None, allow_unknown: bool = False
) -> dict[str, str]:
    """Check that embedding fields come from the same model; return their shared identity.

    Parameters
    ----------
    *fields
        Embedding fields (``manifest.schema.field("embedding")``), two or more.
    sources
        A label per field for the message (e.g. manifest paths).
    allow_unknown
        Accept a field that has no ``model`` metadata (vectors made outside curate) when the
        dimensions agree. By default such a field is refused unless none of them has any.

    Raises
    ------
    ManifestError
        The fields differ in model, pretrained weights, checkpoint hash, preprocessing or
        dimension; the message shows both and says to re-embed with one ``--model``.
    """
    if len(fields) < 2:
        return embedding_model(fields[0]) if fields else {}
    labels = list(sources) if sources is not None else [f.name for f in fields]
    if len(labels) != len(fields):
        raise ValueError(f"sources has {len(labels)} labels for {len(fields)} fields.")
    idents = [embedding_model(f) for f in fields]
    known = [("model" in i) for i in idents]
    first = idents[0]
    for label, ident, has_model in zip(labels[1:], idents[1:], known[1:], strict=True):
        keys = set(IDENTITY_KEYS) | {"dim"}
        if allow_unknown or not (known[0] and has_model):
            if known[0] != has_model and not allow_unknown:
                raise _mismatch(labels[0], first, label, ident, "one has no model metadata")
            keys = {"dim"} | ({k for k in IDENTITY_KEYS if k in first and k in ident})
        for k in sorted(keys):
            if first.get(k) != ident.get(k):
                raise _mismatch(labels[0], first, label, ident, f"{k} differs")
    return first


def _mismatch(a: str, ia: dict, b: str, ib: dict, why: str) -> ManifestError:
    return ManifestError(
        f"embeddings come from different models ({why}): {a} has {_describe(ia)}; "
        f"{b} has {_describe(ib)}. Cosine similarities between them mean nothing: embed both "
        "with the same --model and --pretrained (curate embed), then retry."
    )
