"""``curate.distill`` choosing its pixel learning rate on a validation split cut from train."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import curate
from curate.errors import InputError
from curate.pipelines.distill import DistillConfig
from tests.pipelines._distill_data import FAST, fashion_table, one_thread, write  # noqa: F401

SELECT = dict(
    ipc=1, val_per_class=20, lr_grid=(1.0, 300.0), select_iterations=2, select_epochs=2,
    select_nets=1, **FAST,
)  # fmt: skip


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    # 3 classes x 50 train rows (+ 10 test rows each, which the choice must never read)
    table = fashion_table(3, 50, test_per_class=10)
    return write(table, tmp_path_factory.mktemp("d") / "fashion.parquet")


def test_datadam_chooses_its_lr_on_validation_rows_and_records_the_choice(tmp_path, fashion):
    lines: list[str] = []
    m = curate.distill(
        fashion, tmp_path / "syn", method="datadam", iterations=3, log=lines.append, **SELECT
    )
    info = m.run_info
    sel = info["lr_selection"]
    assert info["config"]["lr"] == "auto" and info["lr"] == sel["chosen_lr"]
    assert sel["grid"] == [1.0, 300.0] and sel["chosen_lr"] in sel["grid"]
    assert set(sel["validation_accuracy"]) == {"1.0", "300.0"}
    assert sel["validation_rows"] == 3 * 20  # cut from the 150 train rows, not the 30 test rows
    assert info["counts"]["real_per_class_available"] == {
        "T-shirt/top": 30, "Trouser": 30, "Pullover": 30,
    }  # fmt: skip
    assert any(line.startswith("chose lr") for line in lines)
    # the validation rows are never distilled from: no synthetic image starts from one
    train_ids = set(curate.open_manifest(fashion).read(["id"]).column("id").to_pylist())
    assert set(m.read(["source_id"]).column("source_id").to_pylist()) <= train_ids


def test_the_choice_counts_in_progress_and_the_winner_continues(tmp_path, fashion):
    seen: list[tuple[int, int]] = []
    m = curate.distill(
        fashion, tmp_path / "syn", method="datadam", iterations=4,
        progress=lambda it, total, loss: seen.append((it, total)), **SELECT,
    )  # fmt: skip
    # two candidates of 2 iterations, then the winner's 2 more: 6 in all, counted once each
    assert [it for it, _ in seen] == list(range(1, 7)) and {t for _, t in seen} == {6}
    timings = m.run_info["timings"]
    assert timings["iterations_run"] == 2 and timings["iterations_run_with_candidates"] == 6
    assert timings["s_per_iteration"] > 0 and timings["choose_lr_s"] > 0


def test_dm_keeps_its_paper_lr_unless_asked_to_choose(tmp_path, fashion):
    m = curate.distill(fashion, tmp_path / "dm", iterations=2, ipc=1, **FAST)
    assert m.run_info["lr"] == 1.0 and m.run_info["lr_selection"] is None
    chosen = curate.distill(fashion, tmp_path / "sel", lr="select", iterations=2, **SELECT)
    assert chosen.run_info["lr_selection"]["grid"] == [1.0, 300.0]


def test_a_validation_split_too_small_to_choose_is_an_error_with_the_minimum(tmp_path):
    src = write(fashion_table(2, 30), tmp_path / "m.parquet")  # half a class: 15 < 20
    with pytest.raises(InputError, match=r"only 15 can be cut .* at least 20 validation rows"):
        curate.distill(src, tmp_path / "o", method="datadam", iterations=1, ipc=1, **FAST)
    with pytest.raises(InputError, match="at least 20 validation rows per class"):
        DistillConfig(method="datadam", val_per_class=5)
    # a fixed lr needs no validation rows
    m = curate.distill(src, tmp_path / "o", method="datadam", lr=1.0, iterations=1, ipc=1, **FAST)
    assert m.run_info["lr_selection"] is None


class _Stop(Exception):
    pass


def test_a_resumed_run_keeps_its_chosen_lr_without_choosing_again(tmp_path, fashion):
    out = tmp_path / "syn"
    opts = dict(method="datadam", iterations=8, checkpoint_every=2, **SELECT)

    def interrupt(it, total, loss):
        if it == 7:  # after the choice (iterations 1-4) and the checkpoint at iteration 4
            raise _Stop

    with pytest.raises(_Stop):
        curate.distill(fashion, out, progress=interrupt, **opts)
    lines: list[str] = []
    m = curate.distill(fashion, out, log=lines.append, **opts)
    assert m.run_info["resumed_from"] == 4 and not lines
    whole = curate.distill(fashion, tmp_path / "whole", **opts)
    a, b = m.run_info["lr_selection"], whole.run_info["lr_selection"]
    assert a["chosen_lr"] == b["chosen_lr"] and a["validation_accuracy"] == b["validation_accuracy"]


def test_an_unknown_lr_word_is_refused():
    with pytest.raises(InputError, match="'auto' or 'select'"):
        DistillConfig(lr="best")
