"""The image files ``ganzoo translate`` reads and the PNG files it writes: inputs named directly or
found in folders, known from their headers (size after EXIF orientation, nothing decoded), and one
output name per input in ``--out-dir``. Imports neither torch nor onnx (pillow only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import GanzooError
from .pictures import IMAGE_SUFFIXES, open_image


@dataclass
class Source:
    """One input image, known from its header: size after EXIF orientation, and where it goes."""

    path: Path
    height: int
    width: int
    out: Path | None = None
    in_folder: bool = False  # found in a folder given as input (skipped if unreadable) rather than named




def _oriented_size(im) -> tuple[int, int]:
    """(height, width) after EXIF orientation, from the header (the pixels are not decoded)."""
    w, h = im.size
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001  (a damaged EXIF block: the pixels are still usable)
        orientation = 1
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def find_inputs(inputs: Sequence[str | Path]) -> tuple[list[Source], list[Path]]:
    """Image files named directly or inside folders (not their sub-folders), in order, and the files
    in those folders that are not images. A file named directly that is not a readable image, or a
    path that does not exist, is an error; one in a folder is skipped."""
    from PIL import Image, UnidentifiedImageError

    unreadable = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError)
    if not inputs:
        raise GanzooError("no inputs: pass image files or folders of images")
    found: list[Source] = []
    skipped: list[Path] = []
    seen: set[Path] = set()
    for raw in inputs:
        p = Path(raw).expanduser()
        if p.is_dir():
            entries = [(f, True) for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".")]
            if not entries:
                raise GanzooError(f"{raw}: the folder holds no files (sub-folders are not searched)")
        elif p.is_file():
            entries = [(p, False)]
        else:
            raise GanzooError(f"{raw} does not exist; pass image files or folders of images")
        for f, in_folder in entries:
            if f.resolve() in seen:  # named twice, or named and inside a folder given too: translated once
                continue
            seen.add(f.resolve())
            if in_folder and f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(f)
                continue
            try:
                with open_image(f) as im:
                    h, w = _oriented_size(im)
                    found.append(Source(f, h, w, in_folder=in_folder))
            except unreadable as exc:
                if in_folder:
                    skipped.append(f)
                    continue
                raise GanzooError(f"{f} is not an image that can be read ({str(exc)[:120]})") from None
    if not found:
        unread = [f.name for f in skipped if f.suffix.lower() in IMAGE_SUFFIXES]
        why = f" ({len(unread)} could not be read: {', '.join(unread[:3])}{' ...' if len(unread) > 3 else ''})" if unread else ""
        raise GanzooError(f"no images among the inputs ({', '.join(map(str, inputs))}){why}; "
                          f"ganzoo translate reads {', '.join(IMAGE_SUFFIXES)}")
    return found, skipped


def assign_outputs(sources: list[Source], out_dir: Path, existing: str = "refuse") -> list[Source]:
    """``out_dir/STEM.png`` for each input; inputs sharing a stem get ``STEM_EXT.png`` (then ``_2``,
    ``_3`` ...). An output that would overwrite an input is an error; one that already exists is an
    error for ``existing="refuse"``, replaced for ``"overwrite"``, and its input left out of the
    returned list (what is still to translate) for ``"skip"``."""
    from collections import Counter

    stems = Counter(s.path.stem for s in sources)
    used: set[str] = set()
    inputs = {s.path.resolve() for s in sources}
    for s in sources:
        name = s.path.stem if stems[s.path.stem] == 1 else f"{s.path.stem}_{s.path.suffix.lstrip('.').lower()}"
        candidate, k = name, 1
        while candidate in used:
            k += 1
            candidate = f"{name}_{k}"
        used.add(candidate)
        s.out = out_dir / f"{candidate}.png"
        if s.out.resolve() in inputs:
            raise GanzooError(f"writing {s.out} would overwrite an input image; pass another --out-dir")
    blocked = next((s.out for s in sources if s.out.exists() and not s.out.is_file()), None)
    if blocked is not None:
        raise GanzooError(f"{blocked} is in the way of an output (it is not a file); remove it or pass another --out-dir")
    there = [s for s in sources if s.out.is_file()]
    if there and existing == "refuse":
        raise GanzooError(f"{len(there)} of the {len(sources)} outputs already exist in {out_dir} (e.g. {there[0].out.name}); "
                          "pass --skip-existing to translate only the others (finishing an interrupted run), "
                          "--overwrite to replace them, or another --out-dir")
    kept = {id(s) for s in there}
    return [s for s in sources if id(s) not in kept] if existing == "skip" else sources
