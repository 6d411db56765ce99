"""Run torch.distributed collectives so that closing the process group cannot deadlock.

Every collective ganzoo issues itself (the stop agreement, logged means, the pool's all-gather,
SyncBatchNorm's sums, ...) goes through :func:`run`, which waits for it and keeps its ``Work`` (and
so the tensors it holds) referenced from Python: the last :data:`_KEEP` of them, freed later by the
main thread (when newer ones push them out, or at exit).

Why: gloo runs each collective on a worker thread, which drops its own reference to the work a
moment *after* the caller has seen it complete. If that is the last reference, freeing the work's
tensors needs the GIL (they have Python objects). When the main thread is at that moment destroying
the process group (``~ProcessGroupGloo``, reached from a Python ``del`` that holds the GIL, joins the
worker threads), each waits for the other for ever. Seen at the end of 2-process runs on a busy
2-core machine with PyTorch 2.13 (py-spy: main thread in ``~ProcessGroupGloo`` -> ``thread::join``,
worker in ``~AsyncAllreduceWork`` -> ``gil_scoped_acquire``); the same race at interpreter exit
aborts the process (signal 6). With a reference held here the worker's drop never frees a work.
The works of DistributedDataParallel's gradient buckets hold C++-only tensors and are safe.
"""

from __future__ import annotations

import collections
from typing import Any, Callable

# A worker thread is done with a work long before this many later collectives have completed;
# older works are dropped by the main thread, which then frees them itself.
_KEEP = 16
_works: collections.deque = collections.deque(maxlen=_KEEP)


def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """``fn(*args, async_op=True, **kwargs)`` (a ``torch.distributed`` collective such as
    ``dist.all_reduce``), waited for; its work stays referenced here (module docstring). Raises what
    the collective raises (a RuntimeError when a peer is lost or the group's timeout passes)."""
    work = fn(*args, async_op=True, **kwargs)
    _works.append(work)
    work.wait()

