"""Checkpoints: atomic writes, a short history, and loading that can never execute code.

A run's ``checkpoints/`` folder holds ``step_XXXXXX.pt`` for the newest ``keep_checkpoints`` saves
and ``last.pt``, a hard link to the newest (a copy where the filesystem has no hard links), which is
what ``--resume``, ``eval``, ``sample`` and ``export`` open. Every file is written to a temp file,
fsynced and renamed, so a crash or a full disk never leaves a half-written checkpoint under its
name. Loading uses ``torch.load(weights_only=True)``: tensors and plain containers only, no code.
When ``last.pt`` cannot be read (bit rot, a copy torn elsewhere) the newest readable
``step_XXXXXX.pt`` is used instead, with one warning line.
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import GanzooError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets the mode open() would give
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, _serialise(state))


def _serialise(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


LAST = "last.pt"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


class CheckpointWriteError(GanzooError):
    """A checkpoint could not be written (full disk, permissions); the previous one is intact.

    Not a mistake in the command line, so the CLI exits 1 rather than 2.
    """

    exit_code = 1


def step_files(folder: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step_XXXXXX.pt`` in ``folder``, newest (highest step) first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)


def _link_or_copy(src: Path, dst: Path, data: bytes) -> None:
    """Make ``dst`` the same file as ``src`` atomically: a hard link renamed into place; where the
    filesystem refuses hard links, an atomic copy of ``data``."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        if tmp.exists():
            tmp.unlink()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        atomic_write_bytes(dst, data)


def write_history_checkpoint(folder: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as ``folder/step_XXXXXX.pt``, point ``last.pt`` at it, keep the newest ``keep``.

    ``keep`` counts ``step_XXXXXX.pt`` files (``last.pt`` shares the newest one's disk space);
    0 keeps them all. Files of later steps than ``step`` (from a timeline abandoned by a resume from
    an older checkpoint) are removed. Raises :class:`CheckpointWriteError` when the disk is full or
    not writable; the files already there are left as they were.
    """
    folder = Path(folder)
    path = folder / f"step_{step:06d}.pt"
    data = _serialise(state)
    try:
        atomic_write_bytes(path, data)
        _link_or_copy(path, folder / LAST, data)
    except OSError as exc:
        if path.exists() and (folder / LAST).exists() and not os.path.samefile(path, folder / LAST):
            path.unlink()  # last.pt still names the previous checkpoint: keep the two in agreement
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        older = [s for s, _ in step_files(folder) if s < step]
        kept = f"the checkpoint of step {older[0]} is intact" if older else "no earlier checkpoint exists"
        raise CheckpointWriteError(
            f"cannot write the checkpoint of step {step} to {folder} ({why}); {kept}; "
            "free some disk space and resume the run"
        ) from None
    files = step_files(folder)
    stale = [p for s, p in files if s > step]
    current = [p for s, p in files if s <= step]
    leftovers = [p for p in folder.iterdir()  # temp files of a process killed while saving
                 if p.name.startswith((".step_", f".{LAST}.")) and p.name.endswith((".tmp", ".link"))]
    for p in stale + (current[keep:] if keep > 0 else []) + leftovers:
        try:
            p.unlink()
        except OSError:  # pragma: no cover - removed meanwhile, or read-only: keeping it is harmless
            pass
    return path


def load_latest_checkpoint(folder: str | Path, map_location: Any = "cpu",
                           warn: Callable[[str], Any] | None = None) -> tuple[dict[str, Any], Path]:
    """The newest readable checkpoint of a run, and its path.

    Normally ``last.pt`` (the same file as the newest ``step_XXXXXX.pt``). A process killed between
    writing ``step_XXXXXX.pt`` and pointing ``last.pt`` at it leaves the step file newest: it is
    complete (written atomically) and is used. A file that cannot be read (bit rot, a copy torn
    elsewhere) is skipped for the next older one, with one warning line (through ``warn``, stderr by
    default). Raises :class:`GanzooError` when none can be read.
    """
    folder = Path(folder)
    last = folder / LAST
    history = [p for _, p in step_files(folder)]
    same = next((p for p in history if last.is_file() and os.path.samefile(p, last)), None)
    candidates = history + ([last] if last.is_file() and same is None else [])
    if len(candidates) <= 1:  # nothing to fall back to: the plain error
        path = last if not candidates or candidates[0] == same else candidates[0]
        return load_checkpoint(path, map_location), path
    bad: list[str] = []
    for path in candidates:
        try:
            state = _read(path, map_location)
        except _Unreadable as exc:
            bad.append(f"{LAST} ({path.name}) {exc}" if path == same else f"{path.name} {exc}")
            continue
        if bad:
            msg = f"ganzoo: warning: {'; '.join(bad)}; using {path.name} (step {state['step']}) instead"
            (warn or (lambda m: print(m, file=sys.stderr, flush=True)))(msg)
        return state, (last if path == same else path)
    raise GanzooError(f"no checkpoint in {folder} can be read ({'; '.join(bad)}); start a new run")


class _Unreadable(Exception):
    """Why a checkpoint file cannot be used (the text of :func:`load_checkpoint`'s error)."""


def _read(path: Path, map_location: Any) -> dict[str, Any]:
    if not path.is_file():
        raise _Unreadable("does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _Unreadable(f"is corrupt or not a ganzoo checkpoint ({first[:160]})") from None
    if not isinstance(state, dict) or "nets" not in state or "step" not in state:
        raise _Unreadable("is not a ganzoo checkpoint (no 'nets'/'step')")
    return state


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only, no code.

    Raises :class:`GanzooError` (one line) when the file is missing, damaged or not a checkpoint.
    """
    path = Path(path)
    try:
        return _read(path, map_location)
    except _Unreadable as exc:
        fix = {"does not exist": "is this a finished or running ganzoo run?"}.get(
            str(exc), "restore it from a copy or start a new run")
        raise GanzooError(f"checkpoint {path} {exc}; {fix}") from None
