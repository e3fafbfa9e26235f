"""ConvNet-3 and DSA: the shapes the protocol fixes, seeding, and replayable augmentation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from curate.train import dsa  # noqa: E402
from curate.train.convnet import ConvNet, seeded_convnet  # noqa: E402


def test_convnet3_on_28px_is_padded_to_32_and_uses_instance_norm():
    net = ConvNet(channels=1, num_classes=10, image_size=28)
    assert net.embed_dim == 128 * 4 * 4  # 28 + 2*3 - 2 = 32 -> 16 -> 8 -> 4
    assert net.blocks[0][0].padding == (3, 3)
    gn = net.blocks[1][1]
    assert isinstance(gn, torch.nn.GroupNorm) and gn.num_groups == gn.num_channels == 128
    maps, emb = net.feature_maps(torch.zeros(2, 1, 28, 28))
    assert [m.shape[-1] for m in maps] == [32, 16, 8] and emb.shape == (2, 2048)
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_convnet_on_32px_rgb():
    net = ConvNet(channels=3, num_classes=4, image_size=32, width=16)
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 4) and net.embed_dim == 16 * 16


def test_seeded_convnet_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = seeded_convnet(7, channels=1, num_classes=3, image_size=28, width=8)
    after = torch.rand(1)
    b = seeded_convnet(7, channels=1, num_classes=3, image_size=28, width=8)
    c = seeded_convnet(8, channels=1, num_classes=3, image_size=28, width=8)
    assert torch.equal(before, after)
    assert torch.equal(a.blocks[0][0].weight, b.blocks[0][0].weight)
    assert not torch.equal(a.blocks[0][0].weight, c.blocks[0][0].weight)


@pytest.mark.parametrize("op", dsa.OPS)
def test_each_dsa_op_is_differentiable_and_replays_on_a_smaller_batch(op):
    g = torch.Generator().manual_seed(0)
    aug = dsa.sample(6, generator=g, ops=(op,))
    real = torch.randn(6, 1, 16, 16)
    syn = real[:2].clone().requires_grad_(True)
    out = dsa.apply(syn, aug)
    out.square().sum().backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0
    # the synthetic images get exactly the parameters the first real images got
    assert torch.allclose(dsa.apply(real, aug)[:2], out.detach(), atol=1e-6)


def test_dsa_crop_shifts_whole_pixels_and_flip_mirrors():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    shift = dsa.Augmentation("crop", 1, {"tx": torch.tensor([1 / 8]), "ty": torch.tensor([0.0])})
    assert dsa.apply(ramp, shift)[0, 0, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 0]
    flip = dsa.Augmentation("flip", 1, {"flip": torch.tensor([True])})
    assert torch.equal(dsa.apply(ramp, flip), ramp.flip(3))


def test_dsa_refuses_unknown_ops_and_oversized_batches():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="unknown DSA op"):
        dsa.sample(2, generator=g, ops=("blur",))
    aug = dsa.sample(2, generator=g)
    with pytest.raises(ValueError, match="drawn for 2"):
        dsa.apply(torch.zeros(3, 1, 8, 8), aug)
