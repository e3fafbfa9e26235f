"""The distillation evaluation's inner loop: train one fresh ConvNet on a small labelled set and
score it on real images (used by ``distill-eval`` and by distill's learning-rate choice)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NetTraining:
    """How each fresh ConvNet is trained (the DC/DM/DataDAM evaluation protocol's values).

    ``epochs`` of SGD (``lr``, ``momentum``, ``weight_decay``, the lr divided by 10 at half the
    epochs) in batches of ``batch_size``, a ConvNet of ``width`` and ``depth``, DSA on every
    batch when ``dsa``; ``precision`` ``auto`` is bf16 autocast on CUDA, fp32 on CPU.
    """

    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    width: int = 128
    depth: int = 3
    dsa: bool = True
    precision: str = "auto"


def train_and_test(
    x, y, x_test, y_test, *, protocol: NetTraining, seed: int, classes: int, device: str
) -> float:
    """Train one seeded ConvNet on ``(x, y)`` (float32 NCHW, normalised) on ``device`` and
    return its accuracy on ``(x_test, y_test)`` after the final epoch.

    SGD with momentum and weight decay, the learning rate divided by 10 at half the epochs,
    DSA augmentation of every batch when ``protocol.dsa``; bf16 autocast on CUDA when
    ``protocol.precision`` is ``auto`` or ``bf16``.
    """
    import torch

    from curate.train import dsa
    from curate.train.convnet import seeded_convnet

    p, dev = protocol, device
    bf16 = p.precision == "bf16" or (p.precision == "auto" and dev.startswith("cuda"))
    autocast = torch.autocast(dev.split(":")[0], torch.bfloat16, enabled=bf16)
    net = seeded_convnet(
        seed,
        channels=x.shape[1],
        num_classes=classes,
        image_size=x.shape[2],
        width=p.width,
        depth=p.depth,
    ).to(dev)
    opt = torch.optim.SGD(
        net.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay
    )
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(x).to(dev), torch.as_tensor(y, dtype=torch.long).to(dev)
    net.train()
    for epoch in range(p.epochs):
        if epoch == p.epochs // 2 and p.epochs > 1:
            for group in opt.param_groups:
                group["lr"] = p.lr * 0.1
        order = torch.randperm(len(xt), generator=g).to(dev)
        for start in range(0, len(xt), p.batch_size):
            idx = order[start : start + p.batch_size]
            xb = dsa.augment(xt[idx], generator=g) if p.dsa else xt[idx]
            with autocast:
                loss = torch.nn.functional.cross_entropy(net(xb).float(), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    net.eval()
    correct = 0
    with torch.no_grad(), autocast:
        for start in range(0, len(x_test), 1024):
            xb = torch.as_tensor(x_test[start : start + 1024]).to(dev)
            pred = net(xb).argmax(1).cpu().numpy()
            correct += int((pred == y_test[start : start + 1024]).sum())
    return correct / len(x_test)
