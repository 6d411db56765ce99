"""Pictures without torch: a numpy image-grid writer, a 2D scatter plot, reading image files (resized
to a model's size for grids; upright, converted, with their alpha for ``ganzoo translate``) and writing
translated ones.

Used by ``ganzoo sample`` on both paths (ONNX Runtime and PyTorch) so they write identical files;
imports only numpy, pillow and (for the scatter plot, lazily) matplotlib. The torch-side equivalents
for training previews live in ``ganzoo/engine/plots.py``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import GanzooError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_images(path: str | Path, channels: int, height: int, width: int, limit: int | None = None) -> np.ndarray:
    """An image file or a folder of them -> float32 ``[N, C, H, W]`` in [-1, 1], resized to H x W."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            raise GanzooError(f"--input {path}: no images ({', '.join(IMAGE_SUFFIXES)}) in that folder")
    elif p.is_file():
        files = [p]
    else:
        raise GanzooError(f"--input {path} is neither an image file nor a folder of images; check the path")
    files = files[:limit] if limit else files
    out = np.empty((len(files), channels, height, width), np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                if im.size != (width, height):
                    im = im.resize((width, height), Image.BILINEAR)
                arr = np.asarray(im, dtype=np.float32)
        except (UnidentifiedImageError, OSError) as exc:
            raise GanzooError(f"--input: cannot read image {f} ({exc})") from None
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        out[i] = arr / 127.5 - 1.0
    return out


@contextlib.contextmanager
def open_image(path: Path):
    """``PIL.Image.open`` without Pillow's ``DecompressionBombWarning`` (images of 89-179 M px): a
    two-line Python warning, where ``ganzoo translate`` checks each image's size against the memory
    available itself, from the header, before decoding. Above 179 M px Pillow still refuses
    (``DecompressionBombError``)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            yield im


def _has_alpha(im) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)


def load_image(path: Path, channels: int, size: tuple[int, int]):
    """``path`` upright (EXIF), converted to ``channels`` and resized to ``size`` ``(h, w)``; return
    (float32 ``[C, h, w]`` in [-1, 1], alpha as a PIL image or None, the conversion made or "")."""
    from PIL import Image, ImageOps

    with open_image(path) as raw:
        im = ImageOps.exif_transpose(raw)
        im.load()
    alpha = None
    if _has_alpha(im):
        im = im.convert("RGBA" if im.mode != "LA" else "LA")
        alpha = im.getchannel("A")
    conversion = ""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float grayscale: scale, do not clip
        arr = np.asarray(im, dtype=np.float32)
        # I;16 is 16-bit by its mode (a dark one too); 32-bit "I" (some 16-bit files) only by its values
        top = 65535.0 if im.mode.startswith("I;16") or (im.mode == "I" and arr.max() > 255) else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
        conversion = "scaled from 16 bits"
    gray = im.mode in ("L", "LA", "1")
    target = "L" if channels == 1 else "RGB"
    if channels == 3 and gray:
        conversion = "grayscale converted to RGB"
    elif channels == 1 and not gray:
        conversion = "colour converted to grayscale"
    im = im.convert(target)
    h, w = size
    if im.size != (w, h):
        method = Image.LANCZOS if w * h < im.size[0] * im.size[1] else Image.BICUBIC
        im = im.resize((w, h), method)
        if alpha is not None:
            alpha = alpha.resize((w, h), method)
    arr = np.asarray(im, dtype=np.float32)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return arr / 127.5 - 1.0, alpha, conversion


def make_folder(path: Path, option: str) -> None:
    """Create the output folder ``path`` (and its parents); :class:`GanzooError` naming ``option`` if it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"{option} {path}: cannot create that folder ({exc.strerror or exc}); pass another") from None


def save_png(pic: np.ndarray, path: Path, alpha=None) -> None:
    """Write ``pic`` uint8 ``[H, W, C]`` (C 1 or 3; ``alpha``: a PIL "L" image to attach) as a PNG,
    atomically: under a temporary name, then renamed, so an interrupted run leaves no half file."""
    from PIL import Image

    img = Image.fromarray(pic[..., 0] if pic.shape[2] == 1 else pic, "L" if pic.shape[2] == 1 else "RGB")
    if alpha is not None:
        img.putalpha(alpha)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        img.save(tmp, format="PNG")
        os.replace(tmp, path)
    except OSError as exc:  # disk full, permissions, the folder removed meanwhile: the files written so far are kept
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise GanzooError(f"cannot write {path} ({exc.strerror or exc})") from None


def save_translated(out: np.ndarray, src_arr: np.ndarray, alpha, path: Path, side_by_side: bool) -> None:
    """Write one translated image ``[C, h, w]`` in [-1, 1] as PNG (``alpha`` put back), or ``src_arr | out``
    side by side (no alpha)."""
    pic = to_uint8(out[None])[0]
    if side_by_side:
        pic = np.concatenate([to_uint8(src_arr[None])[0], pic], axis=1)
        alpha = None
    save_png(pic, path, alpha)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] -> ``[N, H, W, C]`` uint8."""
    x = np.rint((np.clip(images.astype(np.float32), -1, 1) + 1) * 127.5).astype(np.uint8)
    return x.transpose(0, 2, 3, 1)


def save_grid(images: np.ndarray, path: str | Path, nrow: int = 8, pad: int = 2, min_cell: int = 32) -> Path:
    """Write ``images`` ``[N, C, H, W]`` in [-1, 1] as one PNG grid, ``nrow`` per row (small ones upscaled)."""
    from PIL import Image

    arr = to_uint8(images)
    n, h, w, c = arr.shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    scale = max(1, -(-min_cell // max(h, w)))
    H, W = h * scale, w * scale
    canvas = np.full((rows * (H + pad) + pad, nrow * (W + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y0, x0 = pad + r * (H + pad), pad + col * (W + pad)
        canvas[y0 : y0 + H, x0 : x0 + W] = arr[i].repeat(scale, 0).repeat(scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas[..., 0] if c == 1 else canvas, "L" if c == 1 else "RGB").save(path)
    return path


def save_points(points: np.ndarray, path: str | Path, title: str = "") -> Path:
    """A scatter PNG of 2D samples ``[N, 2]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(points[:, 0], points[:, 1], s=3, c="#d62728", alpha=0.6)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
