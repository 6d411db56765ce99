"""Translate image files with an image-to-image generator (CycleGAN's ``G_AB``/``G_BA``), one output
file per input, at the input's own size.

The usual CycleGAN workflow trains on crops (64-256 px) and then translates whole photos. A
generator exported with symbolic height and width (``ExportSpec.dynamic_size``; metadata
``size_multiple``, ``min_size``) takes any size that is a multiple of its ``size_multiple``
(2^downsamplings): each image is reflect-padded up to the next such size, translated, and cropped
back, as the reference implementation's ``--preprocess none`` does without its cropping. EXIF
orientation is applied first (``PIL.ImageOps.exif_transpose``), so a portrait photo from a phone
comes out upright.

Used by ``ganzoo translate`` and the Python API::

    from ganzoo.deploy.translate import translate

    result = translate("runs/cyclegan-a/G_AB.onnx", ["photos/"], "out/")
    print(result.written)            # [Path('out/IMG_0001.png'), ...]

For ``.onnx`` files this module imports neither torch nor onnx (numpy, onnxruntime and pillow
only); a run directory is run in PyTorch through :class:`ganzoo.deploy.export.RunModel`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import GanzooError
from .image_inputs import Source, assign_outputs, find_inputs
from .pictures import load_image, make_folder, save_translated
from .progress import progress_bar

SIZE_MODES = ("native", "train")
#: bytes of working memory per float of the network's largest activation, per input pixel: the
#: activation, its neighbours in the graph and ONNX Runtime's arena (measured on CycleGAN; see
#: ``benchmarks/dynamic_size.py``: 16-16.5 B at 512-1024 px; 20 keeps a margin)
BYTES_PER_ACTIVATION_FLOAT = 20
UNKNOWN_ACTIVATION_FLOATS = 128  # files exported before ``activation_floats`` was recorded
MEMORY_SHARE = 0.6  # of the memory available now, what one batch may use
DEFAULT_BATCH = 8


@dataclass
class TranslateResult:
    """What :func:`translate` did: the files written (in input order), the files skipped, and the
    notes it made (conversions, what was skipped and why)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provider: str = ""  # what ran: cpu, cuda (ONNX Runtime), torch-cpu ...
    model: str = ""  # architecture/network


# -- options -----------------------------------------------------------------------------------------

def parse_size(value: str | int) -> str | int:
    """``native`` (each image at its own size), ``train`` (the training size) or a positive int N (the
    shorter side scaled to N, aspect kept)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        if text in SIZE_MODES:
            return text
        try:
            number = int(text)
        except ValueError:
            raise GanzooError(f"--size {value}: expected native, train or a number of pixels (e.g. --size 512)") from None
    if number < 1:
        raise GanzooError(f"--size {value}: the shorter side must be at least 1 px")
    return number


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable on Linux; else the free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def bytes_per_pixel(info) -> int:
    """Estimated working memory of translating one input pixel with this model."""
    return (info.activation_floats or UNKNOWN_ACTIVATION_FLOATS) * BYTES_PER_ACTIVATION_FLOAT


# -- sizes -------------------------------------------------------------------------------------------

def work_size(info, src: Source, size: str | int) -> tuple[int, int]:
    """The size ``src`` is translated (and written) at."""
    if size == "native":
        return src.height, src.width
    if size == "train":
        return info.height, info.width
    short = min(src.height, src.width)
    return max(1, round(src.height * size / short)), max(1, round(src.width * size / short))


def padded_size(info, height: int, width: int) -> tuple[int, int]:
    """The size the network runs at: ``height x width`` reflect-padded up to a size it takes."""
    if not info.dynamic_size:
        return info.height, info.width
    m, lo = info.size_multiple, max(info.min_size, info.size_multiple)

    def up(v: int) -> int:
        return max(lo, -(-v // m) * m)

    return up(height), up(width)


def check_sizes(info, sources: list[Source], size: str | int, max_pixels: int | None) -> int:
    """Refuse what the model cannot take or memory cannot hold, before any work; return the pixel
    bound of one batch (the padded pixels of all its images)."""
    if not info.dynamic_size and size != "train":
        odd = [s for s in sources if work_size(info, s, size) != (info.height, info.width)]
        if odd:
            h, w = work_size(info, odd[0], size)
            raise GanzooError(
                f"{odd[0].path.name} is {w}x{h} px but this model was exported at a fixed {info.width}x{info.height}; "
                "pass --size train to resize the inputs to that size, or export the run again with this ganzoo "
                "version for any size"
            )
    per_pixel = bytes_per_pixel(info)
    available = available_memory()
    bound = max_pixels if max_pixels else int(available * MEMORY_SHARE / per_pixel)
    biggest = max(sources, key=lambda s: np.prod(padded_size(info, *work_size(info, s, size))))
    ph, pw = padded_size(info, *work_size(info, biggest, size))
    if ph * pw > bound:
        h, w = work_size(info, biggest, size)
        side = max(16, int((bound / (ph * pw)) ** 0.5 * min(h, w)) // 16 * 16)
        if max_pixels:
            why = f"{ph * pw} pixels as the network runs it, more than --max-pixels {max_pixels}"
            fix = f"raise --max-pixels to {ph * pw}"
        else:
            why = (f"translating it at that size needs about {ph * pw * per_pixel / 2**30:.1f} GiB and this machine "
                   f"has {available / 2**30:.1f} GiB available")
            fix = f"pass --max-pixels {ph * pw} to try anyway"
        raise GanzooError(f"{biggest.path.name} is {w}x{h} px: {why}; translate it smaller with --size {side}, or {fix}")
    return bound


# -- pixels ------------------------------------------------------------------------------------------

def reflect_pad(batch: np.ndarray, height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad ``[N, C, h, w]`` by reflection to ``height x width``, centred; return it and (top, left)."""
    dh, dw = height - batch.shape[2], width - batch.shape[3]
    top, left = dh // 2, dw // 2
    if dh == 0 and dw == 0:
        return batch, (0, 0)
    return np.pad(batch, ((0, 0), (0, 0), (top, dh - top), (left, dw - left)), mode="reflect"), (top, left)


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "out of memory" in text or "failed to allocate" in text or "bad_alloc" in text


# -- the model ---------------------------------------------------------------------------------------

def open_model(source: Any, net: str | None = None, *, provider: str = "auto", allow_fallback: bool = False,
               threads: int = 0, device: str = "cpu") -> Any:
    """A model with ``.info`` and ``.run(image=...)``: ``source`` itself when it is one (a
    :class:`~ganzoo.deploy.runtime.GanzooModel`, a :class:`~ganzoo.deploy.export.RunModel`), an
    ``.onnx`` file (ONNX Runtime on ``provider``), or a run directory (PyTorch on ``device``; ``net``
    picks the network)."""
    if hasattr(source, "info") and hasattr(source, "run"):
        if net is not None:
            raise GanzooError("--net applies to run directories; a loaded model is one network")
        return source
    path = Path(source).expanduser()
    if path.is_dir():
        if provider != "auto" or threads or allow_fallback:
            raise GanzooError("--provider/--threads/--allow-fallback apply to .onnx files; a run directory runs in PyTorch (--device)")
        from .export import RunModel

        return RunModel(path, net=net, device=device)
    if path.is_file() or path.suffix == ".onnx":
        if net is not None:
            raise GanzooError("--net applies to run directories; an .onnx file holds one network")
        if device != "cpu":
            raise GanzooError("--device applies to run directories; an .onnx file runs on ONNX Runtime (--provider)")
        from .runtime import GanzooModel

        return GanzooModel(path, provider=provider, allow_fallback=allow_fallback, threads=threads)
    raise GanzooError(f"{source} does not exist; pass an exported .onnx file or a run directory")


# -- the whole job -----------------------------------------------------------------------------------

def translate(model_or_run: Any, inputs: Sequence[str | Path] | str | Path, out_dir: str | Path, *, net: str | None = None,
              size: str | int = "native", side_by_side: bool = False, batch_size: int = DEFAULT_BATCH,
              max_pixels: int | None = None, progress: bool = True, log: Callable[[str, str], Any] | None = None,
              overwrite: bool = False, skip_existing: bool = False, **runtime: Any) -> TranslateResult:
    """Translate every image in ``inputs`` (files, or folders of them) into ``out_dir``.

    ``model_or_run``: an ``.onnx`` file, a run directory or a loaded model (:func:`open_model`;
    ``net`` picks a run's network, e.g. ``G_BA``). ``size``: ``native`` (default: each image at its
    own size, reflect-padded to the model's ``size_multiple`` and cropped back), ``train`` (resized to
    the training size) or N (shorter side scaled to N px). Outputs are PNG files named after their
    inputs (``IMG_1.jpg`` -> ``out_dir/IMG_1.png``), uint8, the model's channels, an input's alpha
    channel copied through; ``side_by_side``: input | output in one picture. Images of one size are
    run in batches of up to ``batch_size`` within ``max_pixels`` padded pixels per batch (default:
    from the memory available, :data:`BYTES_PER_ACTIVATION_FLOAT`). ``log(kind, message)`` (kind
    ``warning`` or ``note``) hears what was skipped and converted as it happens. Outputs already in
    ``out_dir`` are an error unless ``overwrite`` (replace them) or ``skip_existing`` (translate only
    the inputs without one: how an interrupted run is finished; PNGs are written atomically). ``runtime``: the
    options of :func:`open_model` (``provider``, ``allow_fallback``, ``threads``, ``device``). Raises :class:`GanzooError` for a model that does not translate images,
    unreadable inputs, sizes the model cannot take, or an image too large for memory (checked before
    any work).
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if batch_size < 1:
        raise GanzooError(f"--batch-size must be at least 1, got {batch_size}")
    if max_pixels is not None and max_pixels < 1:
        raise GanzooError(f"--max-pixels must be at least 1, got {max_pixels}")
    if overwrite and skip_existing:
        raise GanzooError("--overwrite and --skip-existing exclude each other: replace the outputs, or keep them")
    size = parse_size(size)
    model = open_model(model_or_run, net, **runtime)
    info = model.info
    if not info.image_to_image:
        raise GanzooError(f"{info.architecture}/{info.network} samples from noise and translates no images; "
                          "use 'ganzoo sample' for it")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise GanzooError(f"--out-dir {out_dir} is a file; pass a folder (it is created if missing)")
    sources, skipped = find_inputs(list(inputs))
    todo = assign_outputs(sources, out, "overwrite" if overwrite else "skip" if skip_existing else "refuse")
    done_before, sources = len(sources) - len(todo), todo
    bound = check_sizes(info, sources, size, max_pixels) if sources else 0
    result = TranslateResult(skipped=skipped, provider=getattr(model, "provider", ""),
                             model=f"{info.architecture}/{info.network}")

    def note(msg: str, kind: str = "note") -> None:
        result.notes.append(msg)
        if log:
            log(kind, msg)

    if getattr(model, "note", ""):
        note(model.note, "warning")
    if getattr(model, "skipped", ""):
        note(model.skipped)
    if skipped:
        shown = ", ".join(p.name for p in skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        note(f"skipped {len(skipped)} file(s) that are not readable images: {shown}", "warning")
    if done_before:
        note(f"{done_before} image(s) already translated in {out_dir} were left as they are (--skip-existing)")
    make_folder(out, "--out-dir")

    groups: dict[tuple[int, int], list[Source]] = {}
    for s in sources:
        groups.setdefault(work_size(info, s, size), []).append(s)
    conversions: dict[str, int] = {}
    alpha_note = ("alpha channel dropped (side by side)" if side_by_side
                  else "alpha channel copied to the output, not translated")
    with progress_bar(len(sources), "translating", "image", enabled=progress) as bar:
        for (h, w), members in groups.items():
            ph, pw = padded_size(info, h, w)
            per_batch = max(1, min(batch_size, bound // (ph * pw)))
            for start in range(0, len(members), per_batch):
                chunk, loaded = [], []
                for s in members[start:start + per_batch]:
                    try:
                        loaded.append(load_image(s.path, info.channels, (h, w)))
                        chunk.append(s)
                    except (OSError, ValueError, SyntaxError) as exc:  # the header read, the pixels do not (truncated ...)
                        if not s.in_folder:
                            raise GanzooError(f"{s.path} cannot be decoded ({str(exc)[:120]}); {len(result.written)} "
                                              f"image(s) were translated into {out_dir} before it") from None
                        s.out = None
                        result.skipped.append(s.path)
                        note(f"skipped {s.path.name}: its pixels cannot be decoded ({str(exc)[:120]})", "warning")
                        bar.update(1)
                if not chunk:
                    continue
                for _, alpha, conv in loaded:
                    if conv:
                        conversions[conv] = conversions.get(conv, 0) + 1
                    if alpha is not None:
                        conversions[alpha_note] = conversions.get(alpha_note, 0) + 1
                batch = np.stack([arr for arr, _, _ in loaded])
                padded, (top, left) = reflect_pad(batch, ph, pw)
                try:
                    translated = model.run(image=np.ascontiguousarray(padded))
                except GanzooError:
                    raise
                except Exception as exc:  # noqa: BLE001  (onnxruntime and torch raise their own types)
                    if not _out_of_memory(exc):
                        raise
                    raise GanzooError(
                        f"ran out of memory translating {chunk[0].path.name} ({w}x{h} px, batch of {len(chunk)}); "
                        f"pass --batch-size 1, a smaller --size, or a lower --max-pixels than {bound}"
                    ) from None
                translated = translated[:, :, top:top + h, left:left + w]
                for s, y, (arr, alpha, _) in zip(chunk, translated, loaded):
                    assert s.out is not None
                    save_translated(y, arr, alpha, s.out, side_by_side)
                    result.written.append(s.out)
                bar.update(len(chunk))
    if conversions:
        note("; ".join(f"{n} image(s): {what}" for what, n in conversions.items()))
    order = {s.out: i for i, s in enumerate(sources)}
    result.written.sort(key=order.__getitem__)  # input order (groups by size ran out of it)
    return result
