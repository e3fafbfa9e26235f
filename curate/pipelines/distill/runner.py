"""``distill()``: optimise a few synthetic images per class on one device, write a manifest."""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from curate.config import resolve_config
from curate.errors import InputError
from curate.manifests.io import IN_PROGRESS, Manifest, open_manifest, prepare_output
from curate.manifests.runinfo import make_run_info
from curate.pipelines.distill import checkpoint as ckpt
from curate.pipelines.distill.config import DistillConfig
from curate.pipelines.distill.data import RealData, load_real
from curate.pipelines.distill.methods import get_method
from curate.pipelines.distill.output import write_synthetic


class DistillWarning(UserWarning):
    """Distillation runs, but with something the user should know (few rows, flips on digits)."""


class DivergedError(InputError):
    """The synthetic pixels became NaN/inf; the last checkpoint is kept."""


_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def flip_is_unsafe(class_names: list[str]) -> bool:
    """True when the classes look like digits or characters (MNIST, SVHN, EMNIST), for which a
    horizontal flip is not a symmetry ("2" mirrored is not a "2")."""
    names = [str(n).strip().lower() for n in class_names]
    return all(re.fullmatch(r"\d|[a-z]", n) or n in _NUMBER_WORDS for n in names)


def device_for(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device here; use --device cpu or auto.")
    return name


def _check_classes(real: RealData, cfg: DistillConfig) -> list[str]:
    notes, small = [], {}
    for name, imgs in zip(real.class_names, real.images, strict=True):
        n = len(imgs)
        if cfg.init == "real" and cfg.ipc > n:
            raise InputError(
                f"class {name!r} has {n} usable images, fewer than --ipc {cfg.ipc} with "
                "--init real; lower --ipc, or use --init noise."
            )
        if n < cfg.real_per_class:
            small[name] = n
    if small:
        listed = ", ".join(f"{k!r}: {v}" for k, v in list(small.items())[:10])
        notes.append(
            f"{len(small)} class(es) have fewer usable images than --real-per-class "
            f"{cfg.real_per_class} ({listed}): each iteration uses all of theirs"
        )
    if cfg.fyi and flip_is_unsafe(real.class_names):
        notes.append(
            "--fyi joins each class's synthetic images with their horizontal flips, but these "
            f"classes ({', '.join(real.class_names[:10])}) look like digits or characters, "
            "which a flip does not preserve: FYI is expected to hurt here (the FYI paper "
            "reports losses on digits); drop --fyi unless you have checked it helps"
        )
    for note in notes:
        warnings.warn(note, DistillWarning, stacklevel=3)
    return notes


def _initial_state(real: RealData, cfg: DistillConfig, device: str) -> ckpt.State:
    import torch

    g = torch.Generator().manual_seed(cfg.seed)
    syn, sources = [], []
    for c, imgs in enumerate(real.images):
        if cfg.init == "real":
            idx = torch.randperm(len(imgs), generator=g)[: cfg.ipc]
            syn.append(real.normalise(torch.from_numpy(imgs[idx.numpy()])))
            sources += [real.ids[c][i] for i in idx.tolist()]
        else:
            shape = (cfg.ipc, real.channels, real.side, real.side)
            syn.append(torch.randn(shape, generator=g))
            sources += [None] * cfg.ipc
    return ckpt.State(0, torch.cat(syn).to(device), {}, sources, cfg.resume_key(), [])


class _Loop:
    """One distillation run's tensors and its per-iteration step."""

    def __init__(self, real: RealData, cfg: DistillConfig, state: ckpt.State, device: str):
        import torch

        self.cfg, self.device, self.real = cfg, device, real
        self.method = get_method(
            cfg.method, embed_weight=cfg.embed_weight, attention_power=cfg.attention_power
        )
        if self.method.needs_teacher:
            raise InputError(
                f"method {cfg.method!r} matches a pretrained teacher, which distill() does not "
                "take yet; use dm or datadam."
            )
        self.images = [torch.from_numpy(x).to(device) for x in real.images]
        self.syn = state.syn.to(device).detach().requires_grad_(True)
        self.opt = torch.optim.SGD([self.syn], lr=cfg.lr, momentum=cfg.momentum)
        if state.optimizer:
            self.opt.load_state_dict(state.optimizer)
            for group in self.opt.param_groups:  # lr may differ on resume (e.g. after NaN)
                group["lr"] = cfg.lr
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.startswith("cuda"))
        self.autocast = torch.autocast(device.split(":")[0], torch.bfloat16, enabled=bf16)

    def _batches(self, g):
        import torch

        from curate.train import dsa

        cfg, real_parts, syn_parts = self.cfg, [], []
        for c, imgs in enumerate(self.images):
            idx = torch.randperm(len(imgs), generator=g)[: cfg.real_per_class].to(self.device)
            r = self.real.normalise(imgs[idx])
            s = self.syn[c * cfg.ipc : (c + 1) * cfg.ipc]
            if cfg.fyi:
                s = torch.cat([s, s.flip(3)])
            if cfg.dsa:
                aug = dsa.sample(max(len(r), len(s)), generator=g)
                r, s = dsa.apply(r, aug), dsa.apply(s, aug)
            real_parts.append(r)
            syn_parts.append(s)
        return real_parts, syn_parts

    def step(self, it: int) -> float:
        import torch

        from curate.train.convnet import seeded_convnet

        cfg, seed_it = self.cfg, iteration_seed(self.cfg.seed, it)
        g = torch.Generator().manual_seed(seed_it)
        net = seeded_convnet(
            seed_it,
            channels=self.real.channels,
            num_classes=len(self.images),
            image_size=self.real.side,
            width=cfg.width,
            depth=cfg.depth,
        ).to(self.device)
        net.requires_grad_(False)
        real_parts, syn_parts = self._batches(g)
        with self.autocast:
            with torch.no_grad():
                real_stats = self.method.statistics(net, torch.cat(real_parts))
            syn_stats = self.method.statistics(net, torch.cat(syn_parts))
        loss = 0.0
        r0 = s0 = 0
        for r, s in zip(real_parts, syn_parts, strict=True):
            loss = loss + self.method.loss(
                [x[r0 : r0 + len(r)] for x in real_stats], [x[s0 : s0 + len(s)] for x in syn_stats]
            )
            r0, s0 = r0 + len(r), s0 + len(s)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def finite(self) -> bool:
        import torch

        return bool(torch.isfinite(self.syn).all())

    def state(self, it: int, sources: list, losses: list) -> ckpt.State:
        return ckpt.State(
            it, self.syn.detach(), self.opt.state_dict(), sources, self.cfg.resume_key(), losses
        )


def iteration_seed(seed: int, it: int) -> int:
    """The seed of iteration ``it``: its network, real batch and augmentation."""
    return (seed * 1_000_003 + it) % (2**63 - 1)


def _peak_memory_mb(device: str) -> float:
    import resource

    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _optimise(
    loop: _Loop, state: ckpt.State, out: Path, progress: Callable | None
) -> tuple[ckpt.State, dict]:
    cfg = loop.cfg
    losses, sources = list(state.losses), state.source_ids
    log_every = max(1, cfg.iterations // 200)
    last_saved, start = state.iteration, state.iteration
    t0, cpu0 = time.perf_counter(), time.process_time()
    for it in range(state.iteration, cfg.iterations):
        loss = loop.step(it)
        if not (loss == loss and abs(loss) != float("inf")) or not loop.finite():
            raise DivergedError(
                f"iteration {it + 1}: the synthetic pixels (or the loss) became NaN/inf. The "
                f"last good checkpoint (iteration {last_saved}) is kept in {out}. Fix: rerun "
                f"with a smaller --lr (now {cfg.lr}, e.g. {cfg.lr / 10:g}) to resume from it; "
                "check that the images are not constant."
            )
        if it % log_every == 0 or it + 1 == cfg.iterations:
            losses.append((it + 1, loss))
        if (it + 1) % cfg.checkpoint_every == 0 and it + 1 < cfg.iterations:
            ckpt.save(out, loop.state(it + 1, sources, losses))
            last_saved = it + 1
        if progress is not None:
            progress(it + 1, cfg.iterations, loss)
    done = cfg.iterations - start
    seconds = time.perf_counter() - t0
    timings = {
        "optimise_s": round(seconds, 3),
        "iterations_run": done,
        "s_per_iteration": round(seconds / done, 5) if done else None,
        "cpu_s_per_iteration": round((time.process_time() - cpu0) / done, 5) if done else None,
        "peak_memory_mb": round(_peak_memory_mb(loop.device), 1),
    }
    return loop.state(cfg.iterations, sources, losses), timings


def distill(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    config: DistillConfig | None = None,
    overwrite: bool = False,
    resume: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
    **options,
) -> Manifest:
    """Condense a labelled manifest into ``ipc`` synthetic images per class.

    Parameters
    ----------
    manifest
        A manifest with ``image`` bytes and an int ``label`` (class names in the metadata).
    out
        The synthetic manifest (a directory): ``id``, ``label``, ``image`` (PNG, de-normalised
        uint8), ``pixels`` (the exact float32 values, normalised), ``source_id`` (the real row
        a synthetic image started from; null for noise), with ``run.json``.
    config, **options
        A :class:`DistillConfig`, or its fields as keywords (``method``, ``ipc``, ...).
    overwrite, resume
        Replace an existing output; resume an interrupted one from its last checkpoint.
    progress
        Called as ``progress(iteration, iterations, loss)`` after every iteration.

    Returns
    -------
    Manifest
        The synthetic manifest; ``run_info`` holds the method, config, seeds, normalisation,
        per-iteration time and peak memory.
    """
    import torch

    cfg = resolve_config(DistillConfig, config, options, step="distill")
    t_start = time.perf_counter()
    src = open_manifest(manifest)
    real = load_real(src, split=cfg.split, image_size=cfg.image_size)
    notes = [*real.notes, *_check_classes(real, cfg)]
    device = device_for(cfg.device)
    resume = resume and not overwrite
    out = prepare_output(out, overwrite=overwrite, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / IN_PROGRESS).touch()
    state = ckpt.load(out, cfg.resume_key()) if resume else None
    resumed_from = state.iteration if state else None
    if state is None:
        state = _initial_state(real, cfg, device)
        ckpt.save(out, state)
    with torch.random.fork_rng(devices=[]):
        loop = _Loop(real, cfg, state, device)
        state, timings = _optimise(loop, state, out, progress)
    timings["total_s"] = round(time.perf_counter() - t_start, 3)
    info = make_run_info(
        "distill",
        config={**cfg.to_dict(), "device_used": device},
        inputs={"manifest": src.path},
        counts={
            "classes": len(real.class_names),
            "synthetic": len(state.source_ids),
            "real_per_class_available": {
                n: len(x) for n, x in zip(real.class_names, real.images, strict=True)
            },
            "skipped_rows": real.skipped,
        },
        timings=timings,
        method=cfg.method,
        seeds={"seed": cfg.seed, "iteration_seed": "seed * 1000003 + iteration"},
        normalization={"mean": real.mean, "std": real.std, "pixels": "(x / 255 - mean) / std"},
        image_shape=[real.channels, real.side, real.side],
        resumed_from=resumed_from,
        losses=state.losses,
        notes=notes,
    )
    write_synthetic(out, state, real, cfg, info)
    ckpt.checkpoint_path(out).unlink(missing_ok=True)
    return open_manifest(out)
