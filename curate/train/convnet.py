"""ConvNet-3, the dataset-distillation reference network: conv, instance norm, ReLU, avg-pool."""

from __future__ import annotations

from curate.errors import require

torch = require("torch", "torch")
nn = torch.nn

#: The width and depth the distillation papers use.
WIDTH, DEPTH = 128, 3


class ConvNet(nn.Module):
    """``depth`` blocks of 3x3 conv (``width`` channels), GroupNorm(width, width), ReLU and 2x2
    average pooling, then one linear layer.

    "Instance norm" in the distillation protocol is GroupNorm with one group per channel
    (affine). A 28x28 input (MNIST, Fashion-MNIST) gets padding 3 in the first conv, so it is
    handled as 32x32, as the protocol does.

    Parameters
    ----------
    channels, num_classes
        Input channels (1 for MNIST) and output classes.
    image_size
        Input side (square); 28 is padded to 32 inside the first conv.
    width, depth
        128 and 3 in the protocol; smaller values make tests fast.
    """

    def __init__(
        self,
        *,
        channels: int,
        num_classes: int,
        image_size: int = 32,
        width: int = WIDTH,
        depth: int = DEPTH,
    ) -> None:
        super().__init__()
        side = image_size + 4 if image_size == 28 else image_size
        if side < 2**depth:
            raise ValueError(f"image_size {image_size} is too small for depth {depth}")
        blocks = []
        for d in range(depth):
            pad = 3 if d == 0 and image_size == 28 else 1
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(channels if d == 0 else width, width, 3, padding=pad),
                    nn.GroupNorm(width, width, affine=True),
                    nn.ReLU(inplace=True),
                )
            )
            side //= 2
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AvgPool2d(2, 2)
        self.embed_dim = width * side * side
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def feature_maps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each block's activation (before pooling) and the flattened final embedding."""
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
            x = self.pool(x)
        return maps, x.flatten(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened features the classifier reads (``embed_dim`` values per image)."""
        for block in self.blocks:
            x = self.pool(block(x))
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def seeded_convnet(seed: int, **kwargs) -> ConvNet:
    """A :class:`ConvNet` whose initial weights depend only on ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvNet(**kwargs)
