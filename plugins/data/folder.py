"""Image folders: one sub-folder per class (``PATH/<class>/*.png`` ...), sorted names -> labels 0..K-1."""

from __future__ import annotations

import torch

from ganzoo import GanzooError
from ganzoo.api import DataRequest, Dataset

from ._util import DEFAULT_FILE_IMAGE_SIZE, IMAGE_EXTS, check_request, image_info, list_images, need_path, read_images

LAYOUT = "a folder with one sub-folder of images per class"


def load_folder(request: DataRequest) -> Dataset:
    check_request(request)
    path = need_path(request, "folder", LAYOUT)
    if not path.is_dir():
        raise GanzooError(f"folder: {path} is not a folder; point --data folder:PATH at {LAYOUT}")
    classes = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTS)
    if not classes:
        loose = list_images(path)
        hint = f" (found {len(loose)} loose images: move them into a sub-folder such as {path / 'all'})" if loose else ""
        raise GanzooError(f"folder: no class sub-folders in {path}{hint}; expected {path}/<class>/<image>.png")
    files, labels = [], []
    for label, cls in enumerate(classes):
        imgs = list_images(cls)
        if not imgs:
            raise GanzooError(
                f"folder: class folder {cls} has no images ({exts}); add images or remove the folder"
            )
        files += imgs
        labels += [label] * len(imgs)
    size = request.image_size or DEFAULT_FILE_IMAGE_SIZE
    channels = 1 if request.channels == 1 else 3
    x = read_images(files, size, channels)
    y = torch.tensor(labels, dtype=torch.int64)
    names = tuple(c.name for c in classes)
    return Dataset(info=image_info("image", f"folder:{request.path}", x, names), x=x, y=y)
