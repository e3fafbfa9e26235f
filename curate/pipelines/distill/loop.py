"""One distillation run's optimisation: the initial synthetic images, the per-iteration matching
step on a fresh network, and the loop that runs it with checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from curate.errors import InputError
from curate.pipelines.distill import checkpoint as ckpt
from curate.pipelines.distill.config import DistillConfig
from curate.pipelines.distill.data import RealData
from curate.pipelines.distill.methods import get_method


class DivergedError(InputError):
    """The synthetic pixels became NaN/inf; the last checkpoint is kept."""


def initial_state(real: RealData, cfg: DistillConfig, device: str) -> ckpt.State:
    """The synthetic images before the first iteration: random real images of each class
    (``init="real"``) or Gaussian noise, in the normalised space."""
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


class MatchingLoop:
    """One distillation run's tensors (synthetic pixels, their optimiser) and its step."""

    def __init__(self, real: RealData, cfg: DistillConfig, state: ckpt.State, device: str):
        import torch

        if not isinstance(cfg.lr, float | int):
            raise ValueError(f"the loop needs a numeric lr, got {cfg.lr!r}")
        self.cfg, self.device, self.real = cfg, device, real
        self.selection, self.resume_key = state.selection, state.resume_key
        self.method = get_method(
            cfg.method, embed_weight=cfg.embed_weight, attention_power=cfg.attention_power
        )
        if self.method.needs_teacher:
            raise InputError(
                f"method {cfg.method!r} matches a pretrained teacher, which distill() does not "
                "take yet; use dm or datadam."
            )
        self.images = [torch.from_numpy(x).to(device) for x in real.images]
        self.syn = state.syn.to(device).detach().clone().requires_grad_(True)
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
            it,
            self.syn.detach(),
            self.opt.state_dict(),
            sources,
            self.resume_key,  # the run's settings (its cfg may carry the chosen lr instead)
            losses,
            self.selection,
        )


def iteration_seed(seed: int, it: int) -> int:
    """The seed of iteration ``it``: its network, real batch and augmentation."""
    return (seed * 1_000_003 + it) % (2**63 - 1)


def peak_memory_mb(device: str) -> float:
    import resource

    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def optimise(
    loop: MatchingLoop,
    state: ckpt.State,
    *,
    until: int,
    out: Path | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[ckpt.State, dict]:
    """Run ``loop`` from ``state`` to iteration ``until``; every ``checkpoint_every``
    iterations save a checkpoint into ``out`` (None: none). ``progress(iteration, loss)`` is
    called after each iteration. NaN/inf pixels raise :class:`DivergedError`."""
    cfg = loop.cfg
    losses, sources = list(state.losses), state.source_ids
    log_every = max(1, cfg.iterations // 200)
    last_saved, start = state.iteration, state.iteration
    t0, cpu0 = time.perf_counter(), time.process_time()
    for it in range(state.iteration, until):
        loss = loop.step(it)
        if not (loss == loss and abs(loss) != float("inf")) or not loop.finite():
            raise DivergedError(
                f"iteration {it + 1}: the synthetic pixels (or the loss) became NaN/inf. The "
                f"last good checkpoint (iteration {last_saved}) is kept in {out}. Fix: rerun "
                f"with a smaller --lr (now {cfg.lr}, e.g. {cfg.lr / 10:g}) to resume from it; "
                "check that the images are not constant."
            )
        if it % log_every == 0 or it + 1 == until:
            losses.append((it + 1, loss))
        if out is not None and (it + 1) % cfg.checkpoint_every == 0 and it + 1 < cfg.iterations:
            ckpt.save(out, loop.state(it + 1, sources, losses))
            last_saved = it + 1
        if progress is not None:
            progress(it + 1, loss)
    done = until - start
    seconds = time.perf_counter() - t0
    timings = {
        "optimise_s": round(seconds, 3),
        "iterations_run": done,
        "s_per_iteration": round(seconds / done, 5) if done else None,
        "cpu_s_per_iteration": round((time.process_time() - cpu0) / done, 5) if done else None,
        "peak_memory_mb": round(peak_memory_mb(loop.device), 1),
    }
    return loop.state(until, sources, losses), timings
