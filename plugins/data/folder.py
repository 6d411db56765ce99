"""Image folders. ``PATH/<class>/*.png ...``: one sub-folder per class, sorted names -> labels 0..K-1.
``PATH/*.jpg ...`` with no sub-folders (CelebA's ``img_align_celeba/`` layout): an unlabelled set."""

from __future__ import annotations

from ganzoo import GanzooError
from ganzoo.api import IMAGE_EXTS, DataRequest, Dataset, list_images, load_image_files, warn

from ._util import DEFAULT_FILE_IMAGE_SIZE, check_request, image_info, need_path

LAYOUT = "a folder of images, or a folder with one sub-folder of images per class"


def load_folder(request: DataRequest) -> Dataset:
    check_request(request)
    path = need_path(request, "folder", LAYOUT)
    if not path.is_dir():
        raise GanzooError(f"folder: {path} is not a folder; point --data folder:PATH at {LAYOUT}")
    exts = ", ".join(e.lstrip(".") for e in IMAGE_EXTS)
    classes = [c for c in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
               if list_images(c)]
    loose = list_images(path, recursive=False)
    if classes and loose:
        warn(f"folder: {len(loose)} images directly in {path} are ignored: with class sub-folders, "
             "only images inside them are used (move them into a sub-folder to use them)")
    if classes:
        files, labels = [], []
        for label, cls in enumerate(classes):
            imgs = list_images(cls)
            files += imgs
            labels += [label] * len(imgs)
        names: tuple[str, ...] = tuple(c.name for c in classes)
    elif loose:
        files, labels, names = loose, None, ()
    else:
        raise GanzooError(f"folder: no images ({exts}) in {path} or its sub-folders; expected {path}/<image>.png "
                          f"or {path}/<class>/<image>.png")
    size = request.image_size or DEFAULT_FILE_IMAGE_SIZE
    channels = 1 if request.channels == 1 else 3
    got = load_image_files(files, request, size=size, channels=channels, labels=labels,
                           source=f"folder:{path.resolve()}", root=path)
    info = image_info("image", f"folder:{request.path}", got.x, names, got.native_sizes)
    extra = {"skipped_images": got.skipped} if got.skipped else {}
    return Dataset(info=info, x=got.x, y=got.labels, extra=extra)
