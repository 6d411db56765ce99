"""Unpaired two-domain images in the CycleGAN layout: ``PATH/trainA/`` and ``PATH/trainB/``.

``testA/`` and ``testB/`` may exist and are ignored for training. Images are read as RGB (or L with
``--channels 1``), centre-cropped to a square and resized (default 64).
"""

from __future__ import annotations

from ganzoo import GanzooError
from ganzoo.api import IMAGE_EXTS, DataRequest, Dataset, list_images, load_image_files

from ._util import DEFAULT_FILE_IMAGE_SIZE, check_request, image_info, need_path

LAYOUT = "a folder holding trainA/ and trainB/ image folders (CycleGAN layout)"


def load_unpaired(request: DataRequest) -> Dataset:
    check_request(request)
    path = need_path(request, "unpaired", LAYOUT)
    if not path.is_dir():
        raise GanzooError(f"unpaired: {path} is not a folder; point --data unpaired:PATH at {LAYOUT}")
    size = request.image_size or DEFAULT_FILE_IMAGE_SIZE
    channels = 1 if request.channels == 1 else 3
    exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTS)
    folders = []
    for sub in ("trainA", "trainB"):
        folder = path / sub
        if not folder.is_dir():
            raise GanzooError(f"unpaired: missing folder {folder}; the CycleGAN layout needs {path}/trainA and {path}/trainB")
        files = list_images(folder)
        if not files:
            raise GanzooError(f"unpaired: {folder} holds no images ({exts}); add the domain's images there")
        folders.append((folder, files))
    domains = [load_image_files(files, request, size=size, channels=channels, root=folder,
                                source=f"unpaired:{folder.resolve()}") for folder, files in folders]
    a, b = domains
    native = tuple(dict.fromkeys(a.native_sizes + b.native_sizes))[:16]
    skipped = a.skipped + b.skipped
    extra = {"skipped_images": skipped} if skipped else {}
    return Dataset(info=image_info("unpaired", f"unpaired:{request.path}", a.x, native_sizes=native),
                   x=a.x, x_b=b.x, extra=extra)
