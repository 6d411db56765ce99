"""Which image size a run trains at, and why.

The rule, in order:

1. the size the user asked for (``--image-size``, ``--set image_size=``, ``--config``), or one a
   variant or the architecture's ``data_defaults`` set;
2. the data's native size, when every image has the same square size (the data set's
   ``native_size`` probe: IDX 28x28, CIFAR-10 32x32, a folder of same-size images), that size is
   at least the architecture's preferred size and at most ``MAX_NATIVE`` px, and the architecture
   can build networks for it;
3. otherwise the architecture's preferred size (``defaults["image_size"]``, e.g. dcgan's 16 px,
   chosen for the embedded 8x8 digits), and without one the data loader's own default (64 px for
   image folders).

So MNIST-format files train dcgan at 28x28 rather than 16x16, while the 8x8 digits (too small to
show DCGAN's upsampling stack anything) are served at 16x16, and a folder of 1024 px photos is not
decoded at full size.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..data.base import DataInfo, DataRequest
from ..data.resolve import parse_data_arg
from ..registry import Registry
from ..specs import ArchitectureSpec

MAX_NATIVE = 128


def native_size(registry: Registry, data: str) -> tuple[int, int] | None:
    """The data set's one native (height, width), or None when unknown, mixed or unreadable."""
    try:
        name, path = parse_data_arg(data)
    except Exception:
        return None
    if name not in registry.names("dataset"):
        return None
    spec = registry.get("dataset", name)
    if spec.native_size is None:
        return None
    try:
        got = spec.native_size(DataRequest(name=name, path=path))
        return (int(got[0]), int(got[1])) if got else None
    except Exception:  # a probe must not turn a bad path into a traceback; loading reports it
        return None


def buildable(arch: ArchitectureSpec, size: int, hp: Mapping[str, Any], kind: str = "image") -> str | None:
    """Why ``arch`` cannot build networks for ``size`` x ``size`` images, or None when it can.

    Builds on PyTorch's meta device, so no memory is allocated and no weights are drawn."""
    import torch

    if size < arch.min_image_size:
        return f"it needs at least {arch.min_image_size} px"
    info = DataInfo(kind=kind, name="probe", channels=3, height=size, width=size, num_classes=2, class_names=("a", "b"))
    try:
        with torch.device("meta"):
            arch.build(info, dict(hp))
    except Exception as exc:  # ValueError from conv_plan and the like: the size does not fit
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def choose(registry: Registry, arch: ArchitectureSpec, data: str, asked: int | None, asked_by: str,
           hp: Mapping[str, Any]) -> tuple[int, str]:
    """``(image_size, why)`` for ``arch`` on ``data``: 0 leaves the size to the data loader.

    ``asked`` is the size the user (or a variant / ``data_defaults``, named by ``asked_by``) set, or
    None; ``hp`` the run's hyper-parameters (for the build check)."""
    name = str(data).split(":", 1)[0].strip()
    kind = registry.get("dataset", name).kind if name in registry.names("dataset") else "image"
    if kind == "points":
        return 0, ""
    if asked:
        return asked, f"{asked}x{asked}: {asked_by}"
    preferred = int(arch.defaults.get("image_size") or 0)
    fallback = (f"{arch.name}'s preferred size" if preferred else "the data loader's default size")
    native = native_size(registry, data)
    if native is None:
        return preferred, f"{_sq(preferred)}{fallback}; the data's images are not all one size, or it cannot be told"
    h, w = native
    if h != w:
        return preferred, f"{_sq(preferred)}{fallback}; the data's images are {h}x{w}, not square"
    if preferred and h < preferred:
        return preferred, f"{_sq(preferred)}{fallback}; the data's {h}x{w} is smaller"
    if h > MAX_NATIVE:
        return preferred, f"{_sq(preferred)}{fallback}; the data's {h}x{w} is over {MAX_NATIVE} px (--image-size {h} trains at it)"
    why_not = buildable(arch, h, hp, kind)
    if why_not:
        return preferred, f"{_sq(preferred)}{fallback}; {arch.name} cannot build the data's {h}x{w} ({why_not})"
    return h, f"{h}x{w}: the data's native size"


def _sq(size: int) -> str:
    return f"{size}x{size}: " if size else ""
