"""The decoded data cache: a set decoded once, memory-mapped by every later run and process.

An entry is two files in the cache folder (``$GANZOO_CACHE``, default ``~/.cache/ganzoo``):

* ``<key>.npy`` -- the decoded array (for images uint8 ``[N, C, H, W]``), written with
  ``numpy.lib.format.open_memmap`` and opened again as a copy-on-write memory map, so pages come
  from the OS page cache and are shared by every process that maps the file;
* ``<key>.json`` -- the sidecar: the description the key hashes (source files with sizes and
  mtimes, image size, channels, resize mode, ...), the array's shape and dtype, the loader's
  metadata (labels, class names, ...), the ganzoo version and the creation time.

The key is a hash of the description, so a source file that is added, removed, rewritten or touched
gives a new key (and the stale entry of the same source is removed). Entries are written atomically
(temporary file, fsync, rename; the sidecar last), so a decode killed half-way leaves nothing that
looks valid; an entry whose file is truncated or does not match its sidecar is rebuilt with one
warning. Processes that build the same entry at once take turns on a lock file (POSIX), so the set
is decoded once. An unwritable cache folder falls back to memory with one warning.

The public entry point is :func:`cached_array` (re-exported by :mod:`ganzoo.api`); this is the
same idea as StyleGAN2-ADA's prepared archives and FFCV's memory-mapped files, at a smaller scale.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np

from .. import __version__
from .images import warn

CACHE_ENV = "GANZOO_CACHE"
FORMAT = 1  # bump when the layout of an entry changes: old entries are then never matched

Allocator = Callable[[tuple[int, ...]], np.ndarray]


def cache_dir() -> Path:
    """``$GANZOO_CACHE`` or ``~/.cache/ganzoo`` (``$XDG_CACHE_HOME/ganzoo`` when that is set)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(os.path.expandvars(os.path.expanduser(env)))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ganzoo"


def file_stamps(files: Iterable[str | Path], root: str | Path | None = None) -> list[list[Any]]:
    """``[[name, size_bytes, mtime_ns], ...]`` for ``files`` (names relative to ``root`` if given)."""
    out = []
    for f in files:
        st = os.stat(f)
        name = os.path.relpath(f, root) if root is not None else str(f)
        out.append([name, st.st_size, st.st_mtime_ns])
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class Cached:
    """A cached (or, with the cache off, freshly built) array and its metadata.

    ``array`` is a read-only-by-convention numpy array (a copy-on-write memory map when ``path`` is
    set); ``meta`` is what the ``build`` function returned; ``hit`` says whether it came from disk.
    """

    array: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    hit: bool = False


def cached_array(description: Mapping[str, Any], build: Callable[[Allocator], Mapping[str, Any] | None], *,
                 sources: Iterable[str | Path] = (), root: str | Path | None = None,
                 enabled: bool = True, label: str = "") -> Cached:
    """The array described by ``description``: from the cache, or built now by ``build`` and cached.

    Args:
        description: JSON-serialisable facts that determine the array (format, path, image size,
            channels, resize mode, decoder version, ...). Anything that changes the pixels belongs here.
        build: ``build(alloc) -> meta``. Call ``alloc(shape)`` to get a writable uint8 array of that
            shape (a memory-mapped temporary file, or memory with the cache off) and fill it; the last
            array allocated is the result. ``meta`` (JSON-serialisable: labels, class names, ...) is
            stored in the sidecar and returned as ``Cached.meta``. Exceptions propagate, leaving no entry.
        sources: the files the array is made from; their names, sizes and mtimes join the key, so
            changing any of them rebuilds the entry.
        root: names of ``sources`` are recorded relative to it (default: as given).
        enabled: False skips the cache (``--set data_cache=false``): ``build`` fills memory.
        label: a short name of the source for ``ganzoo cache`` (default: ``description['source']``).

    Returns:
        :class:`Cached`. Its array is uint8 unless ``build`` allocated otherwise (it cannot: alloc
        gives uint8, the dtype of image sets).
    """
    desc = {"cache_format": FORMAT, **dict(description)}
    if not enabled:
        return _build_in_memory(build)
    stamps = file_stamps(sources, root)
    key = _digest({"description": desc, "sources": stamps})
    # entries of one family differ only in their sources (labels follow from the files): a new one
    # replaces the others
    family = _digest({k: v for k, v in desc.items() if k != "labels"})
    folder = cache_dir()
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _Unwritable(exc.strerror or type(exc).__name__) from None
        with _locked(folder / f"{key}.lock"):
            found = _open(folder, key)
            if found is not None:
                return found
            return _build_on_disk(folder, key, family, desc, stamps, build, label or str(desc.get("source", "")))
    except _Unwritable as exc:
        found = _open(folder, key, repair=False) if folder.is_dir() else None  # a read-only, shared cache
        if found is not None:
            return found
        warn(f"the data cache folder {folder} is not writable ({exc.why}); decoding into memory this time "
             f"(set {CACHE_ENV} to a writable folder, or --set data_cache=false to silence this)")
        return _build_in_memory(build)


class _Unwritable(Exception):
    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX ``flock``) so concurrent processes decode a set once."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _Unwritable(exc.strerror or type(exc).__name__) from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no lock, an atomic rename still protects readers
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _build_in_memory(build: Callable[[Allocator], Mapping[str, Any] | None]) -> Cached:
    holder: list[np.ndarray] = []

    def alloc(shape: tuple[int, ...]) -> np.ndarray:
        holder[:] = [np.zeros(tuple(int(s) for s in shape), dtype=np.uint8)]
        return holder[0]

    meta = dict(build(alloc) or {})
    if not holder:
        raise RuntimeError("cached_array: build() never called alloc(shape)")
    return Cached(holder[0], meta)


def _expected_bytes(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(the file size an intact ``.npy`` has, its shape, its dtype), from its header."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = reader(f)
        offset = f.tell()
    return offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, tuple(shape), dtype


def _open(folder: Path, key: str, repair: bool = True) -> Cached | None:
    """The valid entry ``key``, or None (a broken entry is reported once and removed)."""
    npy, side = folder / f"{key}.npy", folder / f"{key}.json"
    if not side.exists():
        if npy.exists() and repair:  # killed between the two renames: the array has no description
            npy.unlink(missing_ok=True)
        return None
    try:
        meta = json.loads(side.read_text())
        want_shape, want_dtype = tuple(meta["shape"]), np.dtype(meta["dtype"])
        size, shape, dtype = _expected_bytes(npy)
        actual = npy.stat().st_size
        if actual != size or shape != want_shape or dtype != want_dtype:
            raise ValueError(f"{actual} bytes for a {dtype} {shape} array (sidecar: {want_dtype} {want_shape}, "
                             f"{size} bytes)")
        arr = np.load(npy, mmap_mode="c")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if not repair:
            return None
        warn(f"cached data {npy} is damaged ({str(exc) or type(exc).__name__}); decoding the set again")
        npy.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):
        os.utime(side)  # last used: 'ganzoo cache clear --older-than' keeps sets in use
    return Cached(arr, meta.get("meta", {}), npy, hit=True)


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _build_on_disk(folder: Path, key: str, family: str, desc: Mapping[str, Any], stamps: list,
                   build: Callable[[Allocator], Mapping[str, Any] | None], label: str) -> Cached:
    tag = f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temps: list[Path] = []
    arrays: list[np.memmap] = []

    def alloc(shape: tuple[int, ...]) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        tmp = folder / f"{key}{tag}-{len(temps)}.npy"
        try:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            temps.append(tmp)
            _reserve(tmp)
        except OSError as exc:
            raise _Unwritable(exc.strerror or str(exc)) from None
        arrays.append(arr)
        return arr

    try:
        meta = dict(build(alloc) or {})  # the loader's own errors (bad files ...) propagate as they are
        if not arrays:
            raise RuntimeError("cached_array: build() never called alloc(shape)")
        _finish(folder, key, family, desc, stamps, label, tag, temps, arrays[-1], meta)
    finally:
        del arrays[:]
        for t in temps:
            t.unlink(missing_ok=True)
    _remove_stale(folder, key, family)
    final = folder / f"{key}.npy"
    return Cached(np.load(final, mmap_mode="c"), meta, final, hit=False)


def _reserve(path: Path) -> None:
    """Allocate the file's blocks now: a full disk then fails here with ENOSPC, instead of killing the
    process with SIGBUS when a page of the sparse memory map is first written."""
    if hasattr(os, "posix_fallocate"):
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without fallocate
                raise
        finally:
            os.close(fd)


def _finish(folder: Path, key: str, family: str, desc: Mapping[str, Any], stamps: list, label: str, tag: str,
            temps: list[Path], arr: np.memmap, meta: Mapping[str, Any]) -> None:
    """fsync the array, rename it into place, then write the sidecar the same way."""
    try:
        arr.flush()
        with open(temps[-1], "rb+") as f:
            os.fsync(f.fileno())
        final = folder / f"{key}.npy"
        os.replace(temps[-1], final)
        record = {
            "key": key, "family": family, "label": label, "ganzoo_version": __version__,
            "created": time.time(), "shape": list(arr.shape), "dtype": str(arr.dtype),
            "bytes": final.stat().st_size, "description": desc, "sources": stamps, "meta": meta,
        }
        side_tmp = folder / f"{key}{tag}.json"
        temps.append(side_tmp)
        _fsync_write(side_tmp, json.dumps(record).encode())
        os.replace(side_tmp, folder / f"{key}.json")
    except OSError as exc:
        raise _Unwritable(exc.strerror or str(exc)) from None


def _remove_stale(folder: Path, key: str, family: str) -> None:
    """Entries of the same description with other sources are out of date: remove them."""
    for entry in list_entries(folder):
        if entry.get("family") == family and entry.get("key") != key:
            remove_entry(folder, entry["key"])


# -- inspection (``ganzoo cache``) -------------------------------------------------------------


def list_entries(folder: Path | None = None) -> list[dict[str, Any]]:
    """The sidecars of every complete entry in ``folder`` (default :func:`cache_dir`), oldest first,
    each with ``last_used`` (sidecar mtime, seconds since the epoch) added."""
    folder = folder or cache_dir()
    out = []
    if not folder.is_dir():
        return out
    for side in folder.glob("*.json"):
        if ".tmp-" in side.name:
            continue
        try:
            rec = json.loads(side.read_text())
            rec["last_used"] = side.stat().st_mtime
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("key") == side.stem:
            out.append(rec)
    return sorted(out, key=lambda r: r.get("created", 0))


def remove_entry(folder: Path, key: str) -> int:
    """Delete entry ``key``; return the bytes freed."""
    freed = 0
    for suffix in (".npy", ".json", ".lock"):
        p = folder / f"{key}{suffix}"
        with contextlib.suppress(OSError):
            freed += p.stat().st_size
            p.unlink()
    return freed


def clear(older_than_days: float | None = None, folder: Path | None = None) -> tuple[int, int]:
    """Remove cached sets (only those unused for more than ``older_than_days`` when given), and
    leftovers of interrupted decodes. Returns (entries removed, bytes freed)."""
    folder = folder or cache_dir()
    now = time.time()
    removed = freed = 0
    for rec in list_entries(folder):
        if older_than_days is not None and now - rec["last_used"] < older_than_days * 86400:
            continue
        freed += remove_entry(folder, rec["key"])
        removed += 1
    if folder.is_dir() and older_than_days is None:
        for tmp in folder.glob("*.tmp-*"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > 3600:  # not a decode running right now
                    freed += tmp.stat().st_size
                    tmp.unlink()
    return removed, freed
