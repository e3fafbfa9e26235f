"""The relabel step: fit the teacher out of fold and estimate the labels' noise channel; soft,
multi- and map labels per batch.

Columns added (every row kept; a row whose image cannot be decoded keeps nulls and an
``error`` ``relabel: KIND: detail``):

- ``soft_classes`` FixedSizeList<int16, k>, ``soft_probs`` FixedSizeList<float16, k>: the
  top-k classes and probabilities of the soft label, most likely first: the posterior
  (teacher x noise channel for the row's given label, :mod:`.posterior`) or, with
  ``target="teacher"``, the teacher alone;
- ``labels`` list<int32>: the classes with probability >= ``threshold`` (at least the top-1);
- ``label_map_classes`` FixedSizeList<int16, k*g*g>, ``label_map_scores``
  FixedSizeList<float16, k*g*g>: per map cell, the top-k classes and their cell logits
  (re-weighted by the same channel, so pooling the whole map of a GAP + linear teacher gives
  back the soft label), laid out ``(k, y, x)`` with y the row from the top and x the column
  from the left.
  The field metadata holds ``curate.map_shape`` ``[k, g, g]``, ``curate.map_layout``
  ``k,y,x``, ``curate.teacher`` (JSON), ``curate.input_size`` and ``curate.resize``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.evidence import check_teacher, gather_evidence, given_labels
from curate.pipelines.relabel.posterior import posterior_logits
from curate.step import FitStep, Resources, add_columns, extend_schema

SOFT_CLASSES = "soft_classes"
SOFT_PROBS = "soft_probs"
MAP_CLASSES = "label_map_classes"
MAP_SCORES = "label_map_scores"
MAP_LAYOUT = "k,y,x"
ERROR_PREFIX = "relabel: "


def _fixed(values: np.ndarray, valid: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """Rows of ``values`` ``(n, w)`` as a FixedSizeList, null where not ``valid``."""
    n, w = values.shape
    flat = pa.array(values.reshape(-1), type=value_type)
    mask = pa.array(~valid) if not valid.all() else None
    return pa.FixedSizeListArray.from_arrays(flat, w, mask=mask)


def label_sets(probs: np.ndarray, threshold: float) -> list[list[int]]:
    """Per row, the classes with probability >= ``threshold``, most likely first (never empty)."""
    order = np.argsort(-probs, axis=1, kind="stable")
    out = []
    for p, o in zip(probs, order, strict=True):
        keep = [int(c) for c in o if p[c] >= threshold]
        out.append(keep or [int(o[0])])
    return out


class RelabelStep(FitStep):
    """``fit`` chooses and fits the teacher out of fold and estimates the noise channel;
    ``process`` labels each batch."""

    name = "relabel"
    resources = Resources(cpus=1.0)

    def __init__(self, config: RelabelConfig, *, log=None) -> None:
        super().__init__(config)
        self.log = log

    def fit(self, manifest) -> RelabelStep:
        from curate.pipelines.relabel.choose import build_chosen

        cfg = self.config
        log = self.log or (lambda _msg: None)
        teacher, self.choice_ = build_chosen(manifest, cfg, log=log)
        log(f"teacher input: {getattr(teacher, 'input_reason', f'{teacher.image_size} px')}; "
            f"{teacher.grid}x{teacher.grid} map")  # fmt: skip
        self.evidence_ = gather_evidence(
            teacher, manifest, prior=cfg.prior, temperature=cfg.temperature,
            batch_size=cfg.batch_size, seed=cfg.seed, log=log,
        )  # fmt: skip
        self.warning_ = None
        if self.evidence_ is not None:
            log(self.evidence_.describe(teacher.name))
            self.warning_ = check_teacher(self.evidence_, teacher.name, cfg.target,
                                          cfg.weak_teacher)  # fmt: skip
        _drop_out_of_fold(teacher)
        self.teacher_ = teacher
        self.k_ = min(cfg.top_k, len(manifest.class_names or []) or cfg.top_k)
        self.base_dir_ = str(manifest.path.parent if manifest.path.is_file() else manifest.path)
        return self

    def setup(self) -> None:
        self.teacher_.setup()

    @property
    def channel(self):
        """The noise channel the posterior uses (None for ``target="teacher"``)."""
        if self.config.target != "posterior" or self.evidence_ is None:
            return None
        return self.evidence_.channel

    def map_metadata(self) -> dict[bytes, bytes]:
        t = self.teacher_
        meta = {
            "map_shape": json.dumps([self.k_, t.grid, t.grid]),
            "map_layout": MAP_LAYOUT,
            "teacher": json.dumps(t.describe(), default=str),
            "input_size": str(t.image_size),
            "resize": "squash (whole image, no crop)",
            "scores": "cell logits (softmax after pooling)",
            "target": self.config.target,
        }
        return {f"curate.{k}".encode(): v.encode() for k, v in meta.items()}

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        k, g = self.k_, self.teacher_.grid
        meta = self.map_metadata()
        fields = [
            pa.field(SOFT_CLASSES, pa.list_(pa.int16(), k)),
            pa.field(SOFT_PROBS, pa.list_(pa.float16(), k)),
            pa.field(S.LABELS, pa.list_(pa.int32())),
            pa.field(MAP_CLASSES, pa.list_(pa.int16(), k * g * g), metadata=meta),
            pa.field(MAP_SCORES, pa.list_(pa.float16(), k * g * g), metadata=meta),
            pa.field(S.ERROR, pa.string()),
        ]
        return extend_schema(schema, fields)

    def _teach(self, x, ids: list[str], given: np.ndarray):
        out = self.teacher_.predict(x, folds=self.teacher_.folds_for(ids), cells=True)
        t, channel = self.config.temperature, self.channel
        probs = posterior_logits(out.logits, given, channel, temperature=t).softmax(dim=1)
        cells = posterior_logits(out.cells, given, channel, temperature=t)
        p, c = probs.topk(self.k_, dim=1)
        ms, mc = cells.topk(self.k_, dim=1)  # (n, k, g, g)
        return [t.detach().cpu().numpy() for t in (probs, p, c, ms, mc)]

    def process(self, table: pa.Table) -> pa.Table:
        from curate.pipelines.teachers import decode_table

        n = table.num_rows
        x, errors = decode_table(table, self.teacher_.image_size, base_dir=self.base_dir_)
        ok = np.array([e is None for e in errors], dtype=bool)
        k, g = self.k_, self.teacher_.grid
        probs = np.zeros((n, 1), np.float32)
        p, c = np.zeros((n, k), np.float32), np.zeros((n, k), np.int16)
        ms, mc = np.zeros((n, k * g * g), np.float32), np.zeros((n, k * g * g), np.int16)
        if ok.any():
            ids = np.asarray(table.column(S.ID).to_pylist(), dtype=object)[ok].tolist()
            given = given_labels(table)[ok]
            probs_ok, p[ok], c[ok], ms_ok, mc_ok = self._teach(x[ok], ids, given)
            ms[ok], mc[ok] = ms_ok.reshape(ok.sum(), -1), mc_ok.reshape(ok.sum(), -1)
            probs = np.zeros((n, probs_ok.shape[1]), np.float32)
            probs[ok] = probs_ok
        sets = label_sets(probs, self.config.threshold)
        columns = {
            SOFT_CLASSES: _fixed(c.astype(np.int16), ok, pa.int16()),
            SOFT_PROBS: _fixed(p.astype(np.float16), ok, pa.float16()),
            S.LABELS: pa.array(
                [s if v else None for s, v in zip(sets, ok, strict=True)], type=pa.list_(pa.int32())
            ),  # fmt: skip
            MAP_CLASSES: _fixed(mc.astype(np.int16), ok, pa.int16()),
            MAP_SCORES: _fixed(ms.astype(np.float16), ok, pa.float16()),
            S.ERROR: _merge_errors(table, errors),
        }
        return add_columns(table, columns, self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        soft = table.column(SOFT_CLASSES)
        relabeled = len(soft) - soft.null_count
        out = {"relabeled": relabeled, "failed": soft.null_count}
        if S.LABEL in table.column_names and relabeled:
            top1 = [v[0] if v is not None else None for v in soft.to_pylist()]
            given = table.column(S.LABEL).to_pylist()
            out["top1_differs"] = sum(
                1
                for a, b in zip(top1, given, strict=True)
                if a is not None and b is not None and a != b
            )
        sizes = [len(v) for v in table.column(S.LABELS).to_pylist() if v is not None]
        out["multi_label"] = sum(1 for s in sizes if s > 1)
        return out

    def run_info(self) -> dict[str, Any]:
        t = self.teacher_
        info = {
            "teacher": t.describe(),
            "map": {"grid": t.grid, "top_k": self.k_},
            "input": {"size": t.image_size, "reason": getattr(t, "input_reason", None)},
            "target": self.config.target,
        }
        if self.choice_ is not None:
            info["teacher_choice"] = self.choice_.record()
        if self.evidence_ is not None:
            info["evidence"] = self.evidence_.record()
        if self.warning_:
            info["warnings"] = [self.warning_]
        return info

    def __getstate__(self) -> dict:
        return {**vars(self), "log": None}


def _drop_out_of_fold(teacher) -> None:
    """Forget the fit's per-row probabilities: the fitted step ships to every worker."""
    for t in [teacher, *getattr(teacher, "members", [])]:
        if hasattr(t, "oof_"):
            del t.oof_


def _merge_errors(table: pa.Table, new: list) -> pa.Array:
    """The input's ``error`` with this step's decode failures appended (``; `` between)."""
    n = table.num_rows
    before = table.column(S.ERROR).to_pylist() if S.ERROR in table.column_names else [None] * n
    msgs = [None if e is None else f"{ERROR_PREFIX}{e[0]}: {e[1]}" for e in new]
    return pa.array(
        ["; ".join(m for m in pair if m) or None for pair in zip(before, msgs, strict=True)],
        type=pa.string(),
    )
