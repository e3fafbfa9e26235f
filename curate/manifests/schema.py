"""The manifest schema: well-known columns, class names and embedding metadata, validation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import pyarrow as pa

from curate.errors import ManifestError

ID = "id"
PATH = "path"
URL = "url"
IMAGE = "image"
TEXT = "text"
LABEL = "label"
LABELS = "labels"
SPLIT = "split"
ERROR = "error"
EMBEDDING = "embedding"

CLASS_NAMES_KEY = b"curate.class_names"
EMBEDDING_META_PREFIX = "curate."

#: Types the well-known columns must have (checked when present).
KNOWN_TYPES: dict[str, tuple[str, callable]] = {
    ID: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    PATH: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    URL: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    IMAGE: ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
    TEXT: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    LABEL: ("integer", pa.types.is_integer),
    LABELS: ("list<integer>", lambda t: pa.types.is_list(t) and pa.types.is_integer(t.value_type)),
    SPLIT: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    ERROR: ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
}


def class_names(schema: pa.Schema) -> list[str] | None:
    """Return the class names stored in the schema metadata, or None."""
    meta = schema.metadata or {}
    raw = meta.get(CLASS_NAMES_KEY)
    return None if raw is None else list(json.loads(raw))


def with_class_names(schema: pa.Schema, names: Sequence[str] | None) -> pa.Schema:
    """Return ``schema`` with ``names`` recorded as the class names (None leaves it unchanged)."""
    if names is None:
        return schema
    meta = dict(schema.metadata or {})
    meta[CLASS_NAMES_KEY] = json.dumps([str(n) for n in names]).encode()
    return schema.with_metadata(meta)


def embedding_type(dim: int, dtype: str = "float16") -> pa.DataType:
    """The Arrow type of an embedding column: FixedSizeList<float16|float32, dim>."""
    value = {"float16": pa.float16(), "float32": pa.float32()}.get(dtype)
    if value is None:
        raise ValueError(f"embedding dtype must be 'float16' or 'float32', got {dtype!r}")
    return pa.list_(value, dim)


def embedding_field(name: str, dim: int, dtype: str = "float16", **meta: str) -> pa.Field:
    """An embedding field; ``meta`` (model, pretrained, preprocess, ...) goes in field metadata."""
    md = {f"{EMBEDDING_META_PREFIX}{k}".encode(): str(v).encode() for k, v in meta.items()}
    md[b"curate.dim"] = str(dim).encode()
    return pa.field(name, embedding_type(dim, dtype), metadata=md)


def embedding_info(field: pa.Field) -> dict[str, str]:
    """The curate metadata of an embedding field (model, pretrained, dim, ...)."""
    out = {}
    for k, v in (field.metadata or {}).items():
        key = k.decode()
        if key.startswith(EMBEDDING_META_PREFIX):
            out[key[len(EMBEDDING_META_PREFIX) :]] = v.decode()
    return out


def embedding_dim(field: pa.Field) -> int | None:
    """The dimension of an embedding column (fixed or variable list), or None if not a list."""
    t = field.type
    if pa.types.is_fixed_size_list(t):
        return t.list_size
    info = embedding_info(field)
    return int(info["dim"]) if "dim" in info else None


def validate_schema(
    schema: pa.Schema, *, source: str, required: Iterable[str] = (ID,), hint: str = ""
) -> None:
    """Raise :class:`ManifestError` if a required column is missing or a known one mistyped."""
    names = set(schema.names)
    twice = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if twice:
        raise ManifestError(
            f"{source}: column name(s) {', '.join(map(repr, twice))} appear more than once; "
            "rename or drop the copies (every column of a manifest has one name)."
        )
    missing = [c for c in required if c not in names]
    if missing:
        raise ManifestError(
            f"{source}: missing required column(s) {', '.join(map(repr, missing))}; "
            f"it has {sorted(names)}." + (f" {hint}" if hint else "")
        )
    for col, (want, ok) in KNOWN_TYPES.items():
        if col in names and not ok(schema.field(col).type):
            got = schema.field(col).type
            raise ManifestError(
                f"{source}: column {col!r} must be {want}, found {got}. "
                f"Cast it, or rename it (--map {col}=other_name) if it means something else."
            )
