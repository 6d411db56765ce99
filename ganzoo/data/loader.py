"""Training batches: drawn in order, gathered in a background thread, augmented on the device.

The indices of every batch are drawn in the training thread, in order, from the run's samplers (so
the data order never depends on timing); gathering the rows (from memory or a memory-mapped cache)
runs one batch ahead in a background thread, into pinned memory on CUDA, and the copy to the device
is non-blocking. Images travel as stored (uint8) and become float in [-1, 1] on the device, where
the :class:`~ganzoo.data.augment.Augment` runs.

Exact resume: :meth:`BatchLoader.state_dict` returns the samplers' states as they were *before*
the batch drawn ahead, i.e. after the last batch the training loop consumed.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch

from .augment import Augment
from .base import Batch, Dataset, as_float


class IndexSampler(Protocol):
    def next(self, k: int) -> torch.Tensor: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, s: Mapping[str, Any]) -> None: ...


class BatchLoader:
    """Batches from ``data`` on ``device`` (``sampler_b`` draws domain B).

    ``batch_size`` is the global batch; with several processes, ``local`` takes this process's rows
    of a global-batch tensor, so the samplers and the augmentation draw for the global batch in
    every process and the run does not depend on the number of processes.
    """

    def __init__(self, data: Dataset, sampler: IndexSampler, sampler_b: IndexSampler | None, batch_size: int,
                 device: torch.device, augment: Augment | None = None, prefetch: bool = True,
                 local: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.data = data
        self.sampler, self.sampler_b = sampler, sampler_b
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.augment = augment
        self.local = local or (lambda t: t)
        self.pin = self.device.type == "cuda"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ganzoo-prefetch") if prefetch else None
        self._pending: tuple[dict[str, Any], Future | Batch] | None = None

    def _samplers_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(),
                "sampler_b": self.sampler_b.state_dict() if self.sampler_b is not None else {}}

    def _gather(self, idx: torch.Tensor, idx_b: torch.Tensor | None) -> Batch:
        b = self.data.get(idx, idx_b, as_float=False)
        if self.pin:
            b = Batch(*(None if t is None else t.pin_memory() for t in (b.real, b.labels, b.real_b, b.labels_b)))
        return b

    def _draw(self) -> tuple[dict[str, Any], Future | Batch]:
        before = self._samplers_state()
        idx = self.local(self.sampler.next(self.batch_size))
        idx_b = self.local(self.sampler_b.next(self.batch_size)) if self.sampler_b is not None else None
        if self._pool is None:
            return before, self._gather(idx, idx_b)
        return before, self._pool.submit(self._gather, idx, idx_b)

    def next(self) -> Batch:
        """The next batch, float images in [-1, 1] on the device, augmented."""
        if self._pending is None:
            self._pending = self._draw()
        _, got = self._pending
        raw = got.result() if isinstance(got, Future) else got
        self._pending = self._draw()  # the next gather overlaps this step's work
        moved = raw.to(self.device)  # non_blocking: pinned on CUDA
        batch = Batch(as_float(moved.real), moved.labels,
                      None if moved.real_b is None else as_float(moved.real_b), moved.labels_b)
        return self.augment(batch, self.batch_size, self.local) if self.augment is not None else batch

    def state_dict(self) -> dict[str, Any]:
        """Sampler and augmenter states after the last batch returned by :meth:`next`."""
        state = dict(self._pending[0]) if self._pending is not None else self._samplers_state()
        if self.augment is not None and self.augment.active:
            state["augment"] = self.augment.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._drop_pending()
        self.sampler.load_state_dict(state["sampler"])
        if self.sampler_b is not None:
            self.sampler_b.load_state_dict(state["sampler_b"])
        if self.augment is not None and "augment" in state:
            self.augment.load_state_dict(state["augment"])

    def _drop_pending(self) -> None:
        if self._pending is not None and isinstance(self._pending[1], Future):
            self._pending[1].result()
        self._pending = None

    def close(self) -> None:
        self._drop_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def write_skipped_images(run_dir: Path, dataset: Dataset) -> None:
    """``skipped_images.txt`` in the run directory: the unreadable files a run left out, one a line
    ("path<TAB>reason"), when ``--set skip_bad_images=true`` skipped any."""
    skipped = dataset.extra.get("skipped_images") or []
    if skipped:
        lines = "".join(f"{p}\t{why}\n" for p, why in skipped)
        (Path(run_dir) / "skipped_images.txt").write_text(lines)
