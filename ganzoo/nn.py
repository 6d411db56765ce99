"""Small network helpers shared by plugins."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The DCGAN-paper initialisation: conv/linear weights ~ N(0, std), norm weights ~ N(1, std),
    biases 0. Returns ``module`` so it chains: ``init_weights(Generator(...))``."""

    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if getattr(m, "weight", None) is not None:
                nn.init.normal_(m.weight, 1.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    module.apply(_init)
    return module


# -- DCGAN-style convolution stacks, sized from the data -------------------------------------------


def conv_plan(height: int, width: int, max_base: int = 8) -> tuple[int, int, int]:
    """How a DCGAN-style network reaches ``height`` x ``width``: ``(base_h, base_w, stages)``.

    The generator starts at ``base_h`` x ``base_w`` and doubles ``stages`` times (the discriminator
    halves as many times). ``stages`` is the largest count that keeps both sides integral and the
    base at least 4 px: 16 -> 4x4 and 2 stages, 28 -> 7x7 and 2, 32 -> 4x4 and 3, 64 -> 4x4 and 4,
    8 -> 4x4 and 1. Raises ValueError when the base would exceed ``max_base`` (e.g. 33 px) or no
    doubling fits (e.g. 7 px).
    """

    def halvings(n: int) -> int:
        k = 0
        while n % 2 == 0 and n // 2 >= 4:
            n //= 2
            k += 1
        return k

    stages = min(halvings(height), halvings(width))
    bh, bw = height >> stages, width >> stages
    if stages == 0 or max(bh, bw) > max_base:
        raise ValueError(
            f"a DCGAN-style network needs sides of the form b*2^k with 4 <= b <= {max_base} and k >= 1 "
            f"(8, 16, 28, 32, 64, ...), got {height}x{width}; pass --image-size 32"
        )
    return bh, bw, stages


def stage_widths(base: int, stages: int, cap: int = 8) -> list[int]:
    """Channel widths at each resolution, coarsest first: ``base * min(2^(stages-1-i), cap)``.

    With base 64 and 3 stages: [256, 128, 64] (the DCGAN paper's halving towards the image)."""
    return [base * min(2 ** (stages - 1 - i), cap) for i in range(stages)]


def up_stack(in_dim: int, widths: list[int], out_channels: int, base_hw: tuple[int, int]) -> nn.Sequential:
    """The DCGAN generator body: a code ``[N, in_dim, 1, 1]`` -> image ``[N, out_channels, H, W]``.

    A ConvTranspose2d projects the code to ``widths[0]`` x ``base_hw``; each further width is a
    stride-2 ConvTranspose2d (kernel 4) + BatchNorm + ReLU; a last stride-2 ConvTranspose2d reaches
    ``out_channels`` with Tanh. ``len(widths)`` is the number of doublings."""
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_dim, widths[0], base_hw, 1, 0, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(True),
    ]
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
    layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def down_stack(in_channels: int, widths: list[int], norm: str = "batch") -> nn.Sequential:
    """The DCGAN discriminator body: image -> features ``[N, widths[-1], H / 2^k, W / 2^k]``.

    Each width is a stride-2 Conv2d (kernel 4) + LeakyReLU(0.2); every layer but the first is
    normalised (``norm``: "batch", "instance", "layer" (GroupNorm with 1 group) or "none")."""
    norms = {
        "batch": nn.BatchNorm2d,
        "instance": lambda c: nn.InstanceNorm2d(c, affine=True),
        "layer": lambda c: nn.GroupNorm(1, c),
        "none": None,
    }
    if norm not in norms:
        raise ValueError(f"unknown norm {norm!r}; use one of {', '.join(norms)}")
    make = norms[norm]
    layers: list[nn.Module] = []
    cin = in_channels
    for i, cout in enumerate(widths):
        layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=make is None or i == 0))
        if i > 0 and make is not None:
            layers.append(make(cout))
        layers.append(nn.LeakyReLU(0.2, True))
        cin = cout
    return nn.Sequential(*layers)
