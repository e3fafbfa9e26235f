"""curate report without a browser: what each section holds, bad input, the folder form, the CLI."""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from typer.testing import CliRunner

import curate.reporting as R
from curate.cli.app import app
from curate.errors import InputError
from curate.reporting.build import build_data


def _page_data(html: str) -> dict:
    raw = re.search(r'<script id="curate-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(raw.group(1))


def _worst_ids(manifest, n: int) -> list[str]:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT id FROM read_parquet('{manifest}/*.parquet') WHERE NOT isnan(label_quality) "
        "ORDER BY label_quality, id LIMIT ?",
        [n],
    ).fetchall()
    return [r[0] for r in rows]


def test_demo_report_is_one_file_with_every_section(demo_report, demo_dir):
    html = demo_report.read_text()
    data = _page_data(html)
    names = [m["name"] for m in data["manifests"]]
    assert names == ["label_issues", "pruned"]
    li, pruned = (m["sections"] for m in data["manifests"])
    assert {"summary", "label_issues", "per_class", "map"} <= set(li)
    assert {"summary", "label_issues", "pruning", "clusters", "map"} <= set(pruned)
    # the gallery is the manifest's worst-ranked rows, worst first
    worst = [r["id"] for r in li["label_issues"]["worst"]]
    assert worst == _worst_ids(demo_dir / "label-issues", len(worst))
    # pruning: counts by reason add up; duplicate groups show the kept row and its cosines
    p = pruned["pruning"]
    assert sum(r["n"] for r in p["reasons"]) == 400
    assert {r["reason"] for r in p["reasons"]} >= {"kept", "dbp:over_quota", "semdedup:dup_of"}
    assert p["groups"] and all(0.9 < r["cos"] <= 1.0001 for g in p["groups"] for r in g["removed"])
    assert sum(p["per_cluster"]["kept"]) == 160 and "quota" in p["per_cluster"]
    # nothing on the page points anywhere but itself
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert 'src="http' not in html and "fetch(" not in html


def test_every_card_has_a_thumbnail_within_budget(demo_dir):
    data = build_data([demo_dir / "label-issues"], max_thumbs=50)
    m = data["manifests"][0]
    assert len(m["thumbs"]) == 50
    assert all(t.startswith("data:image/jpeg;base64,") for t in m["thumbs"].values())
    # several manifests share the budget instead of the first one taking it all
    two = build_data([demo_dir / "label-issues", demo_dir / "pruned"], max_thumbs=100)
    assert [len(m["thumbs"]) for m in two["manifests"]] == [50, 50]


def test_url_only_and_corrupt_rows_get_marked_placeholders(bad_manifest):
    m = build_data([bad_manifest])["manifests"][0]
    thumbs = m["thumbs"]
    assert thumbs["b0"].startswith("data:image/jpeg")
    assert thumbs["b1"] == {"err": "url only (not fetched)"}
    # corrupt bytes with the row's own error keep that error; without one, the decode error
    assert thumbs["b2"] == {"err": "decode: cannot identify image file"}
    assert thumbs["b5"] == {"err": "decode: cannot identify image file"}
    # the unknown struct column is listed but no section reads it
    assert "weird" in m["sections"]["summary"]["columns"]
    assert set(m["sections"]) == {"summary", "per_class"}
    assert m["sections"]["summary"]["errors"] == [{"kind": "decode", "n": 1}]


def test_evaluation_table_and_bad_evaluation(demo_dir, tmp_path):
    ev = tmp_path / "result.json"
    result = {"subset": "dbp", "rows": 160, "accuracy_mean": 0.8, "accuracy_std": 0.01}
    result |= {"random_accuracy_mean": 0.79, "random_accuracy_std": 0.02, "delta_vs_random": 0.01}
    ev.write_text(json.dumps({"results": [result]}))
    data = build_data([demo_dir / "pruned"], evaluation=ev)
    assert data["evaluation"]["results"][0]["delta_vs_random"] == 0.01
    ev.write_text("[1, 2]")
    with pytest.raises(InputError, match="results"):
        build_data([demo_dir / "pruned"], evaluation=ev)


def test_folder_form_writes_thumbnail_files(demo_dir, tmp_path):
    index = R.report([demo_dir / "label-issues"], tmp_path / "gallery")
    data = _page_data(index.read_text())
    files = list(data["manifests"][0]["thumbs"].values())
    assert files and all((tmp_path / "gallery" / f).is_file() for f in files)
    assert len(data["manifests"][0]["sections"]["label_issues"]["worst"]) == 400  # all rows


def test_soft_and_multi_label_columns(tmp_path, demo_dir):
    import numpy as np
    import pyarrow as pa

    from curate.manifests.io import open_manifest, write_manifest

    t = open_manifest(demo_dir / "label-issues").read(["id", "image", "label"])
    n, k = t.num_rows, 3
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(k), n).astype(np.float16)
    classes = np.argsort(-probs, axis=1).astype(np.int16)
    probs = np.take_along_axis(probs, classes.astype(np.int64), axis=1)
    t = t.append_column(
        "soft_classes", pa.FixedSizeListArray.from_arrays(pa.array(classes.ravel()), k)
    )
    t = t.append_column("soft_probs", pa.FixedSizeListArray.from_arrays(pa.array(probs.ravel()), k))
    labels = [
        [int(a)] if i % 3 else [int(a), (int(a) + 1) % 10]
        for i, a in enumerate(t["label"].to_pylist())
    ]
    t = t.append_column("labels", pa.array(labels, pa.list_(pa.int32())))
    write_manifest(t, tmp_path / "relabeled.parquet")
    secs = build_data([tmp_path / "relabeled.parquet"])["manifests"][0]["sections"]
    soft = secs["soft"]
    assert soft["n"] == n and len(soft["rows"][0]["soft_probs"]) == k
    assert soft["rows"][0]["soft_classes"][0] != soft["rows"][0]["label"]  # disagreements first
    assert {s["k"]: s["n"] for s in secs["multi"]["sizes"]}[2] == (n + 2) // 3
    assert all(len(r["labels"]) == 2 for r in secs["multi"]["rows"])


def test_cli_report_and_missing_manifest(demo_dir, tmp_path):
    out = tmp_path / "r.html"
    res = CliRunner().invoke(
        app, ["report", str(demo_dir / "pruned"), "-o", str(out), "--map-rows", "100"]
    )
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and out.exists()
    assert _page_data(out.read_text())["manifests"][0]["sections"]["map"]["n"] == 100
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope"), "-o", str(out)])
    assert res.exit_code != 0 and "no such file" in str(res.exception)


def test_curate_report_is_callable_and_the_demo_ends_with_it(demo_dir, tmp_path):
    import curate
    from curate import demo

    page = curate.report([demo_dir / "pruned"], tmp_path / "p.html")
    assert page.exists() and _page_data(page.read_text())["manifests"][0]["name"] == "pruned"
    assert demo.stages()[-1] == ("report", demo._report)


def test_map_projection_follows_the_widest_directions():
    import numpy as np

    from curate.reporting.clusters import project_2d

    x = np.random.default_rng(0).normal(size=(3000, 32)).astype(np.float32)
    x[:, 3] *= 10
    x[:, 7] *= 5
    xy = project_2d(x, fit_rows=1000)
    assert xy.min() == 0 and xy.max() == 1
    assert abs(np.corrcoef(xy[:, 0], x[:, 3])[0, 1]) > 0.99
    assert abs(np.corrcoef(xy[:, 1], x[:, 7])[0, 1]) > 0.99


def test_distilled_manifest_shows_its_synthetic_images(demo_dir, tmp_path):
    from curate.manifests.io import open_manifest, write_manifest
    from curate.manifests.runinfo import make_run_info, write_run_json

    t = open_manifest(demo_dir / "label-issues").read(["id", "image", "label"]).slice(0, 30)
    write_manifest(t, tmp_path / "synthetic.parquet")
    write_run_json(tmp_path / "synthetic.parquet", make_run_info("distill", config={"ipc": 3}))
    secs = build_data([tmp_path / "synthetic.parquet"])["manifests"][0]["sections"]
    assert secs["per_class"]["synthetic"] is True
    per_label = {}
    for r in secs["per_class"]["rows"]:
        per_label[r["label"]] = per_label.get(r["label"], 0) + 1
    assert sum(per_label.values()) == 30 and max(per_label.values()) <= 8
    assert secs["summary"]["step"] == "distill"
