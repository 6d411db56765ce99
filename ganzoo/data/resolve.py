"""``--data NAME`` and ``--data FORMAT:PATH`` -> a loaded :class:`Dataset` via the registry."""

from __future__ import annotations

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
        p = Path(path).expanduser()
        if not p.exists():
            raise GanzooError(f"--data {name}:{path}: {p} does not exist; check the path")
        path = str(p)
    dataset = spec.load(DataRequest(name=name, path=path, image_size=image_size, channels=channels, seed=seed,
                                    **options))
    if not isinstance(dataset, Dataset):
        raise GanzooError(f"data set plugin '{name}' returned {type(dataset).__name__}, not a Dataset; report this to its plugin")
    return dataset
