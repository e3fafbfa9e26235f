"""``distill_eval()``: train fresh ConvNet-3s on synthetic sets and on random real images at the
same images per class, test them on the real test split, under one pinned protocol."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.config import resolve_config
from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest, prepare_output, write_manifest
from curate.manifests.runinfo import make_run_info, write_run_json
from curate.pipelines.distill.runner import device_for
from curate.train.protocol import NetTraining, train_and_test

RANDOM = "random real"
WHOLE = "whole dataset"


@dataclass(frozen=True)
class EvalProtocol(NetTraining):
    """The evaluation protocol (DC/DM/DataDAM papers); the defaults are the full one.

    Every set (each synthetic set, the random real draws, the whole set) is trained with the
    same settings; the accuracy is the test accuracy after the last epoch (nothing is chosen
    on the test set). ``nets`` networks are trained per set; for the random baseline, net
    ``i`` trains on draw ``i % draws``. ``test_rows`` limits testing to a seeded subset of the
    test split (a reduced protocol, labelled as such, like fewer ``epochs`` or ``nets``).
    """

    nets: int = 10
    draws: int = 5
    test_rows: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "nets", "draws", "batch_size", "width", "depth"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"{name} must be a positive integer, got {v!r}")
        if self.test_rows is not None and self.test_rows < 1:
            raise InputError(f"test_rows must be >= 1, got {self.test_rows}")

    def reductions(self) -> list[str]:
        """How this protocol departs from the full one (empty: the full protocol)."""
        full, out = EvalProtocol(), []
        for name in ("epochs", "nets", "draws", "width", "depth", "dsa", "test_rows"):
            if getattr(self, name) != getattr(full, name):
                out.append(f"{name}={getattr(self, name)} (full: {getattr(full, name)})")
        return out


def _synthetic(paths: list) -> list[dict]:
    from curate.pipelines.distill import read_pixels

    sets = []
    for path in paths:
        m = open_manifest(path)
        pixels, labels, norm = read_pixels(m)
        counts = np.bincount(labels, minlength=len(m.class_names or []))
        if len(set(counts.tolist())) != 1:
            raise ManifestError(f"{m.path}: classes have unequal image counts {counts.tolist()}.")
        info = m.run_info or {}
        cfg = info.get("config", {})
        name = info.get("method", "synthetic") + ("+fyi" if cfg.get("fyi") else "")
        sets.append(
            dict(
                name=name,
                path=str(m.path),
                x=pixels,
                y=labels,
                norm=norm,
                ipc=int(counts[0]),
                class_names=m.class_names,
                manifest=m,
            )
        )
    first = sets[0]
    for s in sets[1:]:
        for key in ("ipc", "norm", "class_names"):
            if s[key] != first[key]:
                raise InputError(
                    f"{s['path']} and {first['path']} differ in {key} ({s[key]} vs "
                    f"{first[key]}); evaluate them in separate runs."
                )
    return sets


def _real_split(real: Manifest, split: str, side: int, norm: dict):
    from curate.pipelines.distill.data import load_real

    if S.SPLIT not in real.schema.names:
        raise ManifestError(
            f"{real.path}: no 'split' column, so train and test rows cannot be told apart; "
            "add a split column (train/test) or pass a manifest that has one."
        )
    data = load_real(real, split=split, image_size=side)
    mean = np.asarray(norm["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(norm["std"], np.float32).reshape(1, -1, 1, 1)
    xs = [(imgs.astype(np.float32) / 255.0 - mean) / std for imgs in data.images]
    ys = [np.full(len(imgs), c) for c, imgs in enumerate(data.images)]
    return data, xs, ys


def _random_draws(data, ipc: int, protocol: EvalProtocol) -> list[list[tuple[int, int]]]:
    """Per draw, the (class, index) pairs of ``ipc`` seeded random real images per class."""
    draws = []
    for d in range(protocol.draws):
        rng = np.random.default_rng([protocol.seed, d, ipc])
        picks = []
        for c, imgs in enumerate(data.images):
            if len(imgs) < ipc:
                raise InputError(
                    f"class {data.class_names[c]!r} has {len(imgs)} train images, fewer than "
                    f"IPC {ipc}: the random baseline cannot be drawn."
                )
            picks += [(c, int(i)) for i in rng.choice(len(imgs), ipc, replace=False)]
        draws.append(picks)
    return draws


def _summary(name: str, ipc, accs: list[float], base: float | None) -> dict:
    mean = float(np.mean(accs))
    return {
        "method": name,
        "ipc": ipc,
        "nets": len(accs),
        "accuracy_mean": mean,
        "accuracy_std": float(np.std(accs)),
        "diff_from_random": None if base is None else mean - base,
        "accuracies": [float(a) for a in accs],
    }


def distill_eval(
    synthetic: str | os.PathLike | Manifest | list,
    *,
    real: str | os.PathLike | Manifest,
    test_split: str = "test",
    train_split: str = "train",
    whole: bool = False,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    protocol: EvalProtocol | None = None,
    **options,
) -> pa.Table:
    """Compare synthetic sets with random real images at the same IPC, on the real test split.

    Parameters
    ----------
    synthetic
        One or more outputs of :func:`curate.distill` with the same IPC and normalisation.
    real
        The labelled manifest they were distilled from, with ``split`` rows for training
        (the random baseline, ``whole``) and testing.
    whole
        Also train on every ``train_split`` image (the upper bound; costly).
    out
        A directory for ``results.parquet`` (the table), ``run.json`` and the random draws
        (``random_draws``, a manifest of ids, labels and draw numbers); None writes nothing.
    protocol, **options
        An :class:`EvalProtocol`, or its fields as keywords (``epochs``, ``nets``, ...).

    Returns
    -------
    pyarrow.Table
        One row per set: method, ipc, nets, accuracy_mean, accuracy_std, diff_from_random,
        accuracies; the metadata holds the protocol and whether it was reduced.
    """
    p = resolve_config(EvalProtocol, protocol, options, step="distill_eval")
    sets = _synthetic(synthetic if isinstance(synthetic, list | tuple) else [synthetic])
    ipc, norm, names = sets[0]["ipc"], sets[0]["norm"], sets[0]["class_names"]
    real_m = open_manifest(real)
    if real_m.class_names is not None and names is not None and real_m.class_names != names:
        raise InputError(f"{real_m.path}: class names differ from the synthetic set's.")
    side = sets[0]["x"].shape[2]
    train, x_tr, y_tr = _real_split(real_m, train_split, side, norm)
    test, x_te, y_te = _real_split(real_m, test_split, side, norm)
    x_test, y_test = np.concatenate(x_te), np.concatenate(y_te)
    if p.test_rows is not None and p.test_rows < len(x_test):
        keep = np.sort(np.random.default_rng([p.seed, 7]).choice(len(x_test), p.test_rows, False))
        x_test, y_test = x_test[keep], y_test[keep]
    k = len(train.class_names)

    device = device_for(p.device)

    def run(x, y, net: int) -> float:  # net i of every set starts from the same weights
        seed = p.seed * 1000 + net
        return train_and_test(x, y, x_test, y_test, protocol=p, seed=seed, classes=k, device=device)

    draws = _random_draws(train, ipc, p)
    rand_accs = []
    for i in range(p.nets):
        picks = draws[i % p.draws]
        x = np.stack([x_tr[c][j] for c, j in picks])
        rand_accs.append(run(x, np.array([c for c, _ in picks]), i))
    base = float(np.mean(rand_accs))
    rows = [_summary(RANDOM, ipc, rand_accs, None)]
    for s in sets:
        accs = [run(s["x"], s["y"], i) for i in range(p.nets)]
        rows.append(_summary(s["name"], ipc, accs, base))
    if whole:
        xw, yw = np.concatenate(x_tr), np.concatenate(y_tr)
        rows.append(_summary(WHOLE, None, [run(xw, yw, i) for i in range(p.nets)], base))
    reduced = p.reductions()
    meta = {
        "protocol": asdict(p),
        "reduced": reduced,
        "test_rows": int(len(x_test)),
        "synthetic": [s["path"] for s in sets],
    }
    table = pa.Table.from_pylist(rows).replace_schema_metadata(
        {b"curate.distill_eval": __import__("json").dumps(meta).encode()}
    )
    if out is not None:
        _write(Path(out), table, meta, draws, train, real_m, sets, overwrite)
    return table


def _write(out: Path, table, meta, draws, train, real_m, sets, overwrite: bool) -> None:
    import pyarrow.parquet as pq

    out = prepare_output(out, overwrite=overwrite)
    out.mkdir(parents=True)
    ids, labels, draw_no = [], [], []
    for d, picks in enumerate(draws):
        for c, j in picks:
            ids.append(train.ids[c][j])
            labels.append(c)
            draw_no.append(d)
    schema = S.with_class_names(
        pa.schema([("id", pa.string()), ("label", pa.int64()), ("draw", pa.int32())]),
        train.class_names,
    )
    draws_t = pa.table({"id": ids, "label": labels, "draw": draw_no}, schema=schema)
    write_manifest(draws_t, out / "random_draws.parquet")
    pq.write_table(table, out / "results.parquet")
    inputs = {"real": real_m.path, **{f"synthetic{i}": s["path"] for i, s in enumerate(sets)}}
    write_run_json(
        out,
        make_run_info(
            "distill-eval", config=meta, inputs=inputs, counts={"results": table.to_pylist()}
        ),
    )
