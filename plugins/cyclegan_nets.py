"""CycleGAN networks: the ResNet generator and the PatchGAN discriminator (Zhu et al. 2017), plus
the history pool of generated images the discriminators train on.

A helper module of the ``cyclegan`` plugin (no entry point of its own). Shapes follow the reference
code (junyanz/pytorch-CycleGAN-and-pix2pix): at 256 px the generator has 9 residual blocks and the
discriminator is the 70x70 PatchGAN; for small images both shrink (see :func:`plan`).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

MAX_DOWN = 2  # stride-2 downsamplings in the paper's generator (and as many upsamplings back)
MAX_D_LAYERS = 3  # 3 stride-2 layers = the 70x70 PatchGAN of the paper


def auto_blocks(size: int) -> int:
    """Residual blocks for ``size`` px: 9 at 256 (paper), 6 at 128 (paper), fewer below."""
    if size >= 256:
        return 9
    if size >= 128:
        return 6
    if size >= 64:
        return 4
    return 3 if size >= 32 else 2


def auto_down(size: int) -> int:
    """Downsamplings for ``size`` px: 2 as in the paper while the bottleneck stays at least 16 px
    (64 px and up), 1 at 32-63 px, none below. A small image squeezed through a 2x2 or 4x4 bottleneck
    gets *repainted* (on digits: another digit), while a full-resolution generator stays local."""
    n = 0
    while n < MAX_DOWN and size // 2 ** (n + 1) >= 16:
        n += 1
    return n


def d_map_size(size: int, n_layers: int) -> int:
    """Side of the PatchGAN output map for a ``size`` px input: k4 s2 p1 convs halve (floor), then
    two k4 s1 p1 convs each take one pixel off."""
    for _ in range(n_layers):
        size //= 2
    return size - 2


def auto_d_layers(size: int) -> int:
    """The deepest PatchGAN (at most the 70x70 one) whose patch map is at least 1x1 (then the
    InstanceNorm before the last conv sees at least 2x2 pixels)."""
    best = 0
    for n in range(1, MAX_D_LAYERS + 1):
        if d_map_size(size, n) >= 1:
            best = n
    return best


def plan(height: int, width: int, n_blocks: int = 0, n_layers_d: int = 0, n_down: int = -1) -> tuple[int, int, int]:
    """(residual blocks, discriminator layers, generator downsamplings) for an image size; 0 blocks
    or layers and -1 downsamplings pick them from the size. ValueError names a violated constraint."""
    size = min(height, width)
    if n_down > MAX_DOWN or n_down < -1:
        raise ValueError(f"n_down must be 0..{MAX_DOWN} (or -1: by image size), got {n_down}")
    down = auto_down(size) if n_down == -1 else n_down
    factor = 2**down
    if height % factor or width % factor:
        raise ValueError(
            f"height and width must be multiples of {factor} (the generator downsamples {down} times by 2 "
            f"and upsamples back); pass --image-size 8, 16, 32, 64, ..."
        )
    inner = size // factor
    if inner < 2:
        raise ValueError(
            f"the residual blocks reflection-pad the {inner}x{inner} feature map (image/{factor}) by 1, which needs "
            f"at least 2 px: use images of at least {2 * factor} px (--image-size) or a smaller n_down"
        )
    if n_blocks < 0 or n_layers_d < 0:
        raise ValueError("n_blocks and n_layers_d must be >= 0 (0 picks them from the image size)")
    blocks = n_blocks or auto_blocks(size)
    layers = n_layers_d or auto_d_layers(size)
    if layers < 1 or d_map_size(size, layers) < 1:
        best = auto_d_layers(size)
        raise ValueError(
            f"a PatchGAN with n_layers_d={layers} maps {size} px to a "
            f"{max(0, d_map_size(size, layers))}x{max(0, d_map_size(size, layers))} patch map (needs at least 1x1); "
            + (f"use n_layers_d {best} or less" if best else "use larger images")
        )
    return blocks, layers, down


class ResnetBlock(nn.Module):
    """x + (reflect-pad, conv3, IN, ReLU, reflect-pad, conv3, IN)(x)."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-out, tanh (``n_down=2``, the
    paper's; fewer d/u pairs for small images). ``forward(image)``
    maps ``[N, C, H, W]`` in [-1, 1] to the same shape in [-1, 1]."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int, n_blocks: int, n_down: int = MAX_DOWN):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ch // 2), nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_ch, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.n_down = n_down
        self.n_blocks = n_blocks

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this (the downsamplings must be undone exactly)."""
        return 2**self.n_down

    @property
    def min_size(self) -> int:
        """The smallest side it takes: the 7x7 reflection pad needs 4 px, the residual blocks' pad of 1
        a feature map of at least 2 px."""
        return max(4, 2 * self.size_multiple if self.n_blocks else self.size_multiple)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` k4 s2 convs, one k4 s1 conv, then a k4 s1 conv to one score per patch
    (``n_layers=3``: 70x70 receptive field). LeakyReLU 0.2; InstanceNorm on all but the first layer."""

    def __init__(self, in_ch: int, ndf: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n in range(1, n_layers + 1):
            nxt = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride=stride, padding=1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class ImagePool:
    """The history of generated images (Shrivastava et al. 2017) the reference CycleGAN feeds its
    discriminators: until ``size`` images are stored each new image is stored and returned; after
    that, with probability 1/2 a new image replaces a random stored one and the stored one is
    returned, else the new image is returned. Randomness comes from the run's noise generator."""

    def __init__(self, size: int):
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
        images = images.detach()
        if self.size <= 0:
            return images
        if self.images and self.images[0].device != images.device:  # restored from a CPU checkpoint
            self.images = [t.to(images.device) for t in self.images]
        n = images.shape[0]
        swap = torch.rand(n, generator=generator, device=device).tolist()
        slot = torch.randint(0, self.size, (n,), generator=generator, device=device).tolist()
        out = []
        for i in range(n):
            img = images[i]
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif swap[i] > 0.5:
                out.append(self.images[slot[i]])
                self.images[slot[i]] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> torch.Tensor:
        if not self.images:
            return torch.zeros(0)
        return torch.stack(self.images).cpu()

    def load_state_dict(self, state: Any) -> None:
        t = state if isinstance(state, torch.Tensor) else torch.zeros(0)
        self.images = [] if t.numel() == 0 else [x.clone() for x in t.unbind(0)]


def pool_state(pools: Mapping[str, ImagePool]) -> dict[str, torch.Tensor]:
    return {f"pool_{k}": p.state_dict() for k, p in pools.items()}
