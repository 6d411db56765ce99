"""Data-parallel training on torch.distributed: torchrun, DistributedDataParallel (DDP), ranks.

A run started by ``torchrun --nproc-per-node N -m ganzoo train ARCH ...`` (or ``ganzoo train ARCH
--nproc N``, which starts the same through :mod:`torch.distributed.run`) has ``WORLD_SIZE`` N > 1 in
its environment. Then every process:

* joins one process group: gloo for CPU tensors, plus NCCL for CUDA tensors when CUDA is there, with
  a timeout (``GANZOO_DIST_TIMEOUT`` seconds, 300 by default) so a lost process cannot hang the rest;
  one CUDA device per ``LOCAL_RANK``;
* trains on its ``batch_size / world_size`` rows of the global batch; the global random draws are
  made identically everywhere and sliced (:class:`ganzoo.api.StepContext`), BatchNorm becomes
  :class:`~ganzoo.engine.syncbn.SyncBatchNorm`, and DDP averages both groups' gradients, so the run
  follows the 1-process run with the same global batch (up to the order of float sums);
* leaves writing to rank 0.

The GAN-specific part is which wrapper a step sees. DDP syncs gradients only for a forward made
through its wrapper, and a forward through the wrapper arms its reducer, which then waits for
gradients of *all* its parameters in the next backward. So while the discriminators are updated the
steps' ``ctx.nets`` calls the D wrappers and the plain generators (whose output is detached), and
while the generators are updated it calls the G wrappers and the plain discriminators: the critic's
forward in the generator step never arms the D reducer (the "Expected to have finished reduction in
the prior iteration" failure), and the gradients that flow are exactly the ones DDP averages. The
views forward attribute access to the network, so steps cannot tell them from the network.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import GanzooError
from . import collective

TIMEOUT_ENV = "GANZOO_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0
_MSG_BYTES = 1024


class EveryRankError(GanzooError):
    """A user error every process raised at the same point (after an agreement): rank 0 reports
    it, the other processes exit quietly with the same status."""


# -- where this process stands -------------------------------------------------------------------
def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    if _initialized():
        import torch.distributed as dist

        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    if _initialized():
        import torch.distributed as dist

        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_main() -> bool:
    return rank() == 0


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def who() -> str:
    return f"rank {rank()} of {world_size()}"


# -- the process group ---------------------------------------------------------------------------
def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise GanzooError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds, e.g. {TIMEOUT_ENV}=600") from None
    if value <= 0:
        raise GanzooError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw}")
    return value


def init() -> None:
    """Join the process group torchrun described in the environment (no-op in one process)."""
    if not launched() or _initialized():
        return
    import torch.distributed as dist

    if not dist.is_available():
        raise GanzooError("this PyTorch build has no torch.distributed; install one that has it to train with torchrun")
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        if local_rank() < torch.cuda.device_count():
            torch.cuda.set_device(local_rank())
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()))


def shutdown() -> None:
    if _initialized():
        import torch.distributed as dist

        dist.destroy_process_group()


def process_device(name: str) -> str:
    """The device this process trains on for the configured ``name`` (auto, cpu, cuda, cuda:N):
    ``cuda:LOCAL_RANK`` in a multi-process CUDA run."""
    if world_size() == 1 or name == "cpu":
        return name
    if name == "auto" and not torch.cuda.is_available():
        return "cpu"
    if name.startswith("cuda:"):
        raise GanzooError(
            f"--device {name}: with several processes each uses the GPU of its LOCAL_RANK; pass --device cuda "
            "(or auto), and choose GPUs with CUDA_VISIBLE_DEVICES"
        )
    if not torch.cuda.is_available():
        raise GanzooError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if local_rank() >= torch.cuda.device_count():
        raise GanzooError(
            f"process LOCAL_RANK {local_rank()} has no GPU: this machine shows {torch.cuda.device_count()}; "
            "start at most that many processes per node"
        )
    return f"cuda:{local_rank()}"


# -- agreements ----------------------------------------------------------------------------------
def any_rank(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any of them (a MAX all-reduce of one number;
    just ``flag`` in one process). Every process must call it at the same point, e.g. at step end,
    so that all of them stop at the same step."""
    if not _initialized() or world_size() == 1:
        return bool(flag)
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int32)  # a CPU tensor: the gloo side of the group
    collective.run(dist.all_reduce, t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _gather_messages(msg: str | None) -> list[str | None]:
    import torch.distributed as dist

    buf = torch.zeros(_MSG_BYTES + 1, dtype=torch.uint8)
    if msg is not None:
        raw = msg.encode("utf-8")[:_MSG_BYTES]
        buf[0] = 1
        buf[1 : 1 + len(raw)] = torch.tensor(list(raw), dtype=torch.uint8)
    out = [torch.zeros_like(buf) for _ in range(world_size())]
    collective.run(dist.all_gather, out, buf)
    return [bytes(t[1:].tolist()).rstrip(b"\0").decode("utf-8", "replace") if int(t[0]) else None for t in out]


def agree_on_setup(fn: Callable[[], Any]) -> Any:
    """``fn()`` on every process; if it raised a user error on any of them, every process raises
    one :class:`EveryRankError` naming the rank(s), so none waits for a process that gave up."""
    if not _initialized() or world_size() == 1:
        return fn()
    err: BaseException | None = None
    result = None
    try:
        result = fn()
    except EveryRankError:  # an agreement inside fn already settled it
        raise
    except GanzooError as exc:
        err = exc
    except Exception as exc:  # a bug: keep its traceback on this rank, but release the others first
        err = exc
    msgs = _gather_messages(None if err is None else (str(err) if isinstance(err, GanzooError) else f"{type(err).__name__}: {err}"))
    if err is not None and not isinstance(err, GanzooError):
        raise err
    failed = [(r, m) for r, m in enumerate(msgs) if m is not None]
    if not failed:
        return result
    if len(failed) == world_size() and len({m for _, m in failed}) == 1:
        raise EveryRankError(failed[0][1])
    r, m = failed[0]
    raise EveryRankError(f"rank {r} of {world_size()}: {m}")


def lost_peer(exc: BaseException) -> bool:
    """True for the error a collective raises when another process died (its own error was reported
    by that process, or by torchrun)."""
    text = str(exc).lower()
    return any(s in text for s in ("connection closed by peer", "connection reset by peer", "broken pipe",
                                    "connection refused", "socket closed"))


def timed_out(exc: BaseException) -> bool:
    return "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()


def report_rank_error(exc: BaseException) -> None:
    """In a multi-process run, turn an error of this process into what the user should see: one
    line from the process that failed, silence from those that only lost it. Re-raises a
    :class:`GanzooError` for the CLI to print, exits quietly, or returns (a bug: keep the traceback)."""
    if world_size() == 1:
        return
    if isinstance(exc, EveryRankError):
        # every process is here together: close the group, or gloo may abort one at exit (signal 6)
        shutdown()
        if is_main():
            raise exc
        sys.exit(2)
    if isinstance(exc, GanzooError):
        raise GanzooError(f"{who()}: {exc}") from None
    if isinstance(exc, KeyboardInterrupt):
        return
    if isinstance(exc, RuntimeError) and timed_out(exc):
        raise GanzooError(
            f"{who()}: no answer from the other processes within {timeout_s():.0f} s (one is stuck or was stopped); "
            f"set {TIMEOUT_ENV} to wait longer"
        ) from None
    if isinstance(exc, RuntimeError) and lost_peer(exc):
        sys.exit(1)  # another process failed and said why; torchrun stops this one anyway


# -- one run's data-parallel state ---------------------------------------------------------------
class _Live:
    """What a step gets for a network being updated: calls go through its DDP wrapper (so its
    gradients are averaged), everything else reaches the network itself."""

    __slots__ = ("_ddp", "_net")

    def __init__(self, ddp: nn.Module, net: nn.Module):
        object.__setattr__(self, "_ddp", ddp)
        object.__setattr__(self, "_net", net)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ddp(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._net, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._net, name, value)

    def __repr__(self) -> str:
        return f"DDP view of {self._net!r}"


def _all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    import torch.distributed as dist

    x = x.contiguous()
    out = [torch.empty_like(x) for _ in range(world_size())]
    collective.run(dist.all_gather, out, x)
    return torch.cat(out)


def _no_buffer_sync(ddp_cls: type) -> dict[str, bool]:
    """No buffer broadcast in every forward (SyncBatchNorm keeps running statistics equal anyway);
    the keyword was renamed in recent PyTorch."""
    import inspect

    params = inspect.signature(ddp_cls.__init__).parameters
    return {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}


class Replicas:
    """The data-parallel side of one run: this process's rank, the DDP wrappers of the networks both
    optimiser groups update, and the ``ctx.nets`` each update phase sees (module docstring). In one
    process every method is the identity and no network is wrapped."""

    def __init__(self, nets: dict[str, nn.Module], groups: Mapping[str, tuple[str, ...]], device: torch.device,
                 batch_size: int, sync_bn: bool = True):
        self.nets = nets
        self.world = world_size()
        self.rank = rank()
        self.views: dict[str, dict[str, Any]] = {"G": nets, "D": nets}
        self._first_bad: torch.Tensor | None = None
        if self.world == 1:
            return
        # the last point where a process may give up alone: DDP's constructor is a collective
        agree_on_setup(lambda: self._check_batch(batch_size))
        from torch.nn.parallel import DistributedDataParallel as DDP

        from .syncbn import convert_sync_batchnorm, has_batchnorm

        if any(has_batchnorm(n) for n in nets.values()):
            if sync_bn:
                for name in list(nets):  # in place: the run's parts and the step context share this dict
                    nets[name] = convert_sync_batchnorm(nets[name])
            elif self.rank == 0:
                print("ganzoo: note: sync_bn=false: each process normalises its own share of the batch, so this run "
                      "no longer follows the 1-process run (world-size invariance is lost)", file=sys.stderr)
        ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        ddp = {}
        for group in ("G", "D"):
            for name in groups[group]:
                if any(p.requires_grad for p in nets[name].parameters()):
                    ddp[name] = DDP(nets[name], device_ids=ids, **_no_buffer_sync(DDP))
        self.views = {g: {**nets, **{n: _Live(ddp[n], nets[n]) for n in groups[g] if n in ddp}} for g in ("G", "D")}

    def _check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            lo = batch_size - batch_size % self.world
            raise GanzooError(
                f"batch_size {batch_size} (the global batch) does not split over {self.world} processes; "
                f"pass --batch-size {lo or self.world} or {lo + self.world}"
            )

    def nets_for(self, group: str) -> dict[str, Any]:
        """``ctx.nets`` while ``group`` ("G" or "D") is being updated."""
        return self.views[group]

    def local(self, x: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global-batch tensor (e.g. the sampler's indices)."""
        if self.world == 1:
            return x
        n = x.shape[0] // self.world
        return x[self.rank * n : (self.rank + 1) * n]

    def all_gather(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None if self.world == 1 else _all_gather_rows

    def watch(self, step: int, losses: Mapping[str, torch.Tensor]) -> None:
        """Remember the first step at which this process's losses were not finite (tensor ops only,
        no device sync), so a divergence can name the process it started in."""
        if self.world == 1 or not losses:
            return

        def bad(prefix: str) -> torch.Tensor:
            vals = [v.detach().float().reshape(()) for k, v in losses.items() if k.startswith(prefix)]
            return ~torch.isfinite(torch.stack(vals)).all() if vals else torch.zeros((), dtype=torch.bool)

        # half-steps: a D loss gone bad (2*step) comes before the G loss of the same step (2*step + 1),
        # which every process sees once DDP has averaged the bad D gradients into everyone's weights
        d_bad, g_bad = bad("d_"), bad("g_")
        if self._first_bad is None:
            self._first_bad = torch.full((), float("inf"), device=d_bad.device)
        when = torch.where(d_bad, 2.0 * step, 2.0 * step + 1).to(self._first_bad.device)
        self._first_bad = torch.where((d_bad | g_bad).to(when.device) & torch.isinf(self._first_bad), when, self._first_bad)

    def mean_over_ranks(self, sums: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
        """Each logged sum averaged over the processes (the same in all of them), and, when some were
        not finite, where that started: " (first in rank R, at step S)" ("" in one process)."""
        if self.world == 1 or not sums:
            return sums, ""
        import torch.distributed as dist

        keys = sorted(sums)
        local = torch.stack([sums[k].float().reshape(()) for k in keys])
        first = torch.zeros(self.world, device=local.device)
        first[self.rank] = self._first_bad if self._first_bad is not None else float("inf")
        packed = torch.cat([local, first])
        collective.run(dist.all_reduce, packed)
        mean, first = packed[: len(keys)] / self.world, packed[len(keys):].cpu()
        if not torch.isfinite(first).any():
            return dict(zip(keys, mean)), ""
        when = float(first.min())
        ranks = [str(r) for r in range(self.world) if float(first[r]) == when]
        return dict(zip(keys, mean)), f" (first in rank {', '.join(ranks)}, at step {int(when) // 2})"

    def check_in_step(self) -> None:
        """Raise (on every process) when the processes' weights have drifted apart: a step called a
        part of a network (``ctx.nets[name].layer(x)``) instead of the network, which bypasses DDP."""
        if self.world == 1:
            return
        import torch.distributed as dist

        with torch.no_grad():
            fp = torch.stack([p.detach().double().abs().sum() for n in self.nets.values() for p in n.parameters()]).sum()
        both = torch.stack([fp, -fp]).cpu()
        collective.run(dist.all_reduce, both, op=dist.ReduceOp.MAX)
        hi, lo = float(both[0]), -float(both[1])
        if hi - lo > 1e-6 * max(1.0, abs(hi)):
            raise EveryRankError(
                "the processes' weights drifted apart: a step called part of a network (ctx.nets[name].layer(x)) "
                "instead of the network itself, so DistributedDataParallel did not average those gradients; call "
                "ctx.nets[name](...) in the step, or train with one process"
            )
