"""``--data NAME`` and ``--data FORMAT:PATH`` -> a loaded :class:`Dataset` via the registry."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GanzooError, unknown
from .base import DataRequest, Dataset

if TYPE_CHECKING:  # pragma: no cover
    from ..registry import Registry


def parse_data_arg(text: str) -> tuple[str, str | None]:
    text = text.strip()
    if not text:
        raise GanzooError("--data is empty; pass a data set name (see 'ganzoo list datasets') or FORMAT:PATH")
    if ":" in text:
        name, path = text.split(":", 1)
        return name.strip(), path.strip()
    return text, None


def load_dataset(text: str, image_size: int | None = None, seed: int = 0, channels: int | None = None,
                 registry: "Registry | None" = None, **options) -> Dataset:
    """Load ``--data`` TEXT (NAME or FORMAT:PATH). ``options`` are the other :class:`DataRequest`
    fields: ``cache``, ``skip_bad_images``, ``progress``, ``workers``."""
    from ..registry import get_registry

    registry = registry or get_registry()
    name, path = parse_data_arg(text)
    names = registry.names("dataset")
    if name not in names:
        formats = [n for n in names if registry.get("dataset", n).takes_path]
        raise unknown("data set", name, names, f"files on disk are read with FORMAT:PATH, FORMAT one of {', '.join(formats)}")
    spec = registry.get("dataset", name)
    if spec.takes_path and not path:
        raise GanzooError(f"--data {name} reads files: pass --data {name}:PATH")
    if not spec.takes_path and path:
        raise GanzooError(f"--data {name} is embedded and takes no path; drop ':{path}'")
    if path is not None:
        p = Path(os.path.expandvars(os.path.expanduser(path)))
        if not p.exists():
            raise GanzooError(f"--data {name}:{path}: {p} does not exist; check the path")
        path = str(p)
    dataset = spec.load(DataRequest(name=name, path=path, image_size=image_size, channels=channels, seed=seed,
                                    **options))
    validate(dataset, spec.kind, name)
    return dataset


def validate(dataset: object, kind: str, name: str) -> None:
    """Check what a loader returned against the contract of docs/data.md; one line naming the data
    set and what is wrong (a plugin bug: the user reports it)."""
    import torch

    def bad(what: str) -> GanzooError:
        return GanzooError(f"data set plugin '{name}' returned {what}; report this to its plugin")

    if not isinstance(dataset, Dataset):
        raise bad(f"{type(dataset).__name__}, not a Dataset")
    info, x = dataset.info, dataset.x
    if info.kind != kind:
        raise bad(f"{info.kind} data, but its spec says {kind}")
    if kind == "points":
        if x.ndim != 2 or not x.dtype.is_floating_point or (info.dim and x.shape[1] != info.dim):
            raise bad(f"points of shape {list(x.shape)} and dtype {x.dtype}; expected float [N, {info.dim or 2}]")
        return
    for domain, t in (("", x), (" (domain B)", dataset.x_b)):
        if t is None:
            if kind == "unpaired":
                raise bad("unpaired data without domain B (x_b)")
            continue
        if t.ndim != 4 or tuple(t.shape[1:]) != (info.channels, info.height, info.width):
            raise bad(f"images{domain} of shape {list(t.shape)} but DataInfo says "
                      f"[N, {info.channels}, {info.height}, {info.width}]")
        if t.dtype != torch.uint8 and not t.dtype.is_floating_point:
            raise bad(f"images{domain} of dtype {t.dtype}; expected uint8 in [0, 255] or float in [-1, 1]")
    for domain, y in (("", dataset.y), (" (domain B)", dataset.y_b)):
        if y is not None and (y.dtype != torch.int64 or y.ndim != 1):
            raise bad(f"labels{domain} of dtype {y.dtype} and shape {list(y.shape)}; expected int64 [N]")
        if y is not None and info.num_classes and len(y) and not (0 <= int(y.min()) and int(y.max()) < info.num_classes):
            raise bad(f"labels{domain} outside 0..{info.num_classes - 1}")
