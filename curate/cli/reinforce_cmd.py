"""``curate reinforce`` and ``curate reinforce-export``: parse options, call the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.errors import InputError
from curate.pipelines.reinforce.config import POLICIES, ReinforceConfig

_D = ReinforceConfig()

REINFORCE_PARAMS = [
    argument("manifest", Path, help="Labelled manifest with image bytes."),
    option("out", Path | None, None, "--out", "-o",
           help="Output: every row plus content_hash, aug_params, aug_partner, soft_classes, "
           "soft_probs; teacher/ beside it; default: NAME-reinforced beside the input."),
    option("teacher", str | None, None, "--teacher",
           help="Default: efficientnet_lite0 + a head fit on the labels (as curate relabel); "
           "or timm:<name>=<weights>, classifier:timm:<name>=<weights>, '+' = ensemble."),
    option("augs", int, _D.augs, "--augs", help="Views per image."),
    option("top_k", int, _D.top_k, "--top-k", help="Teacher classes kept per view."),
    option("policy", str, _D.policy, "--policy", help=f"One of {', '.join(POLICIES)}."),
    option("mix", str, _D.mix, "--mix", help="none, mixup or cutmix."),
    option("mix_prob", float, _D.mix_prob, "--mix-prob", help="Share of views that mix."),
    option("size", int | None, None, "--size", help="View side (default: the image height)."),
    option("seed", int, _D.seed, "--seed", help="Seeds every view (per row id and view)."),
    option("head", str, _D.head, "--head", help="Default teacher's head: logreg or mlp."),
    option("teacher_image_size", int | None, _D.teacher_image_size, "--teacher-image-size",
           help="Teacher input side."),
    option("teacher_split", str | None, None, "--teacher-split",
           help="Fit the teacher's head on this split only (e.g. train)."),
    option("calibration_split", str | None, _D.calibration_split, "--calibration-split",
           help="Held-out rows (neither teacher nor student trains on them) recorded for "
           "fitting a student's temperature; '' for none."),
    option("device", str, _D.device, "--device", help="auto, cpu or cuda."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip

CALIBRATE_PARAMS = [
    argument("manifest", Path, help="A curate reinforce output."),
    option("split", str, _D.calibration_split, "--split", help="The held-out split."),
]

EXPORT_PARAMS = [
    argument("manifest", Path, help="A curate reinforce output."),
    option("out", Path, ..., "--out", "-o", help="Folder for reinforced-NNNNN.tar shards."),
    option("rows_per_shard", int, 2000, "--rows-per-shard", help="Images per tar shard."),
]


def reinforce_cmd(**options: Any) -> None:
    """Reinforce a dataset: seeded augmented views with the teacher's top-k soft labels."""
    from curate.cli.app import console
    from curate.pipelines.reinforce import reinforce

    manifest, out, overwrite = options.pop("manifest"), options.pop("out"), options.pop("overwrite")
    engine = pop_engine(options)
    options["calibration_split"] = options["calibration_split"] or None
    try:
        config = ReinforceConfig(**options)
    except ValueError as exc:
        raise InputError(f"curate reinforce: {exc}") from None
    m = reinforce(manifest, out, overwrite=overwrite, config=config, **engine)
    c = m.run_info["counts"]
    console.print(
        f"reinforced {c['reinforced']:,} of {c['rows']:,} images ({c['views']:,} views, "
        f"{c['failed']:,} without views: see 'error'); teacher "
        f"{m.run_info['teacher'].get('name')} -> {m.path}",
        highlight=False,
    )
    cal = m.run_info.get("calibration", {})
    if "rows" in cal:
        console.print(
            f"held out {cal['rows']:,} rows of split {cal['split']!r} for calibrating students "
            "(calibration.json; curate.train.calibration.calibrate_student); teacher's "
            f"temperature on their views {cal['teacher_temperature_on_views']:.3f}",
            highlight=False,
        )
    else:
        console.print(cal.get("note", ""), highlight=False)


def calibrate_cmd(**options: Any) -> None:
    """Record a reinforced manifest's held-out rows again (calibration.json) for its teacher."""
    from curate.cli.app import console
    from curate.pipelines.reinforce import calibrate

    cal = calibrate(options["manifest"], split=options["split"])
    console.print(
        f"{cal['rows']:,} held-out rows of split {cal['split']!r}, teacher "
        f"{cal['teacher_sha256']}: its temperature on their views "
        f"{cal['teacher_on_views']['temperature']:.3f}",
        highlight=False,
    )


def export_cmd(**options: Any) -> None:
    """Export a reinforced manifest as WebDataset tar shards (image, .cls, views .json)."""
    from curate.cli.app import console
    from curate.pipelines.reinforce import export_webdataset

    shards = export_webdataset(
        options["manifest"], options["out"], rows_per_shard=options["rows_per_shard"]
    )
    console.print(f"wrote {len(shards)} shard(s) to {options['out']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("reinforce")(command(reinforce_cmd, REINFORCE_PARAMS))
    app.command("reinforce-export")(command(export_cmd, EXPORT_PARAMS))
    app.command("reinforce-calibrate")(command(calibrate_cmd, CALIBRATE_PARAMS))
