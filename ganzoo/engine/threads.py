"""How many CPU threads a training run gives PyTorch's intra-op pool.

Small networks lose to thread synchronisation, and badly when a core is busy with another job: an
intra-op parallel region waits for its slowest thread, and a thread that shares its core with
another process waits a whole scheduler slice. Measured on a 2-core machine with one core busy,
``ganzoo train vanilla`` took 751 s at torch's default of 2 threads and 45 s at 1
(``benchmarks/threads.py`` keeps the current figures). So, unless the user fixes the count, the
engine picks it from

* the cores this process may use (``os.sched_getaffinity``, capped by a cgroup CPU quota),
* how many of them are really free: CPU time of other processes sampled from ``/proc/stat`` over a
  short window (``os.getloadavg`` where there is no ``/proc``), and
* the work per training step: the multiply-adds of the convolution and linear layers in one forward
  pass of the architecture's discriminator and generator steps, counted on copies of the networks.

Precedence: ``--threads N`` / config key ``threads`` (N > 0) > the ``OMP_NUM_THREADS`` environment
variable > auto. The choice and its reason are recorded in ``config.toml`` (``[decisions]``) and in
the run's first printed line.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .build import RunParts

# Below this many forward multiply-adds per step (in billions), one thread: the layers are too small
# for a second thread to pay for its synchronisation (vanilla on ring8: 0.17; dcgan at 16 px: 0.86;
# see docs/benchmarks.md). Above it, one more thread per this much work, up to the free cores.
SMALL_GMAC = 0.5
# A core counts as free when at least this share of it was idle in the sampling window.
FREE_SHARE = 0.7
SAMPLE_S = 0.25


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count of a run. ``source``: "option", "env" or "auto"; ``why`` in words."""

    threads: int
    source: str
    why: str


def usable_cores() -> list[int]:
    """The CPU ids this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def cgroup_quota() -> float | None:
    """The cgroup (v2 or v1) CPU quota in cores, or None when there is none."""
    try:
        text = open("/sys/fs/cgroup/cpu.max", encoding="ascii").read().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", encoding="ascii").read())
        period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us", encoding="ascii").read())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def _cpu_times(cpus: list[int]) -> dict[int, tuple[int, int]] | None:
    """(busy, total) jiffies per CPU id from /proc/stat; None without /proc."""
    try:
        lines = open("/proc/stat", encoding="ascii").read().splitlines()
    except OSError:
        return None
    wanted = {f"cpu{c}": c for c in cpus}
    out = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0] in wanted:
            vals = [int(v) for v in parts[1:]]
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
            total = sum(vals[:8])  # guest time is already counted in user
            out[wanted[parts[0]]] = (total - idle, total)
    return out or None


def busy_cores(cpus: list[int], window_s: float = SAMPLE_S) -> tuple[float, str]:
    """How many of ``cpus`` other processes keep busy (0..len(cpus)) and how it was measured.

    Samples /proc/stat over ``window_s`` while this process sleeps, so its own work is not counted;
    falls back on the 1-minute load average where there is no /proc."""
    before = _cpu_times(cpus)
    if before is not None:
        time.sleep(window_s)
        after = _cpu_times(cpus)
        if after:
            busy = 0.0
            for c, (b1, t1) in after.items():
                b0, t0 = before.get(c, (b1, t1))
                if t1 > t0:
                    busy += (b1 - b0) / (t1 - t0)
            return min(float(len(cpus)), busy), f"/proc/stat over {window_s:g} s"
    try:
        return min(float(len(cpus)), os.getloadavg()[0]), "1-minute load average"
    except OSError:  # pragma: no cover - no load average on this platform
        return 0.0, "no load figures"


def decide(cores: float, busy: float, gmac: float | None) -> tuple[int, str]:
    """The thread count for ``cores`` usable cores of which ``busy`` are taken by other processes,
    for ``gmac`` billion forward multiply-adds per training step (None: unknown, e.g. a CUDA run
    whose heavy work is on the GPU). Returns (threads >= 1, the reason in words).

    A core is free when at least ``FREE_SHARE`` of it is idle; a step of less than ``SMALL_GMAC``
    gets one thread; a larger one a thread per ``SMALL_GMAC`` begun, at most the free cores."""
    whole = max(1, int(math.floor(cores)))
    free = max(1, min(whole, int(math.floor(cores - busy + (1 - FREE_SHARE)))))
    cores_txt = f"{free} of {whole} cores free"
    if gmac is None:
        return free, f"auto: {cores_txt}"
    work = f"{gmac:.2g} GMAC forward per step"
    if gmac < SMALL_GMAC:
        return 1, f"auto: {cores_txt}, small model, {work}"
    n = min(free, max(1, math.ceil(gmac / SMALL_GMAC)))
    if n < free:
        return n, f"auto: {cores_txt}, {work} (one thread per {SMALL_GMAC:g} GMAC)"
    return n, f"auto: {cores_txt}, {work}"


def step_gmac(parts: "RunParts", batch_size: int, n_critic: int = 1) -> float:
    """Billions of multiply-adds in the Conv/ConvTranspose/Linear layers of one forward pass of the
    architecture's ``d_step`` (times ``n_critic``) and ``g_step`` at ``batch_size``.

    Runs on deep copies of the networks with a fresh step object, a fresh noise generator and the
    global RNG forked, so the run itself is untouched (a resumed run stays bit-exact)."""
    import torch
    from torch import nn

    nets = {k: copy.deepcopy(v) for k, v in parts.nets.items()}
    total = [0]

    def hook(m: nn.Module, inp: Any, out: Any) -> None:
        if isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features
        elif isinstance(m, nn.ConvTranspose2d):
            total[0] += inp[0].numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Conv2d):
            total[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    for net in nets.values():
        net.train()
        for m in net.modules():
            m.register_forward_hook(hook)
    gen = torch.Generator(device=parts.device)
    gen.manual_seed(0)
    ctx = dataclasses.replace(parts.ctx, nets=nets, generator=gen, extras=dict(parts.ctx.extras))
    step = parts.spec.make_step(dict(ctx.hp))
    ds = parts.dataset
    idx = torch.arange(batch_size) % len(ds)
    idx_b = torch.arange(batch_size) % ds.len_b if ds.len_b else None
    batch = ds.get(idx, idx_b).to(parts.device)
    with torch.random.fork_rng(devices=[]):
        d = step.d_step(ctx, batch)
        per_d = total[0]
        del d
        step.g_step(ctx, batch)
    return (per_d * n_critic + (total[0] - per_d)) / 1e9


def env_threads() -> int | None:
    """OMP_NUM_THREADS as a positive integer, or None when unset or unusable."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        n = int(text.split(",")[0])  # OpenMP allows a nested list "4,2": the first level is ours
    except ValueError:
        return None
    return n if n > 0 else None


def choose(cfg: Mapping[str, Any], parts: "RunParts | None" = None) -> ThreadChoice:
    """The thread count for a run configured by ``cfg`` (key ``threads``: 0 auto, N fixed), and why.
    ``parts`` (the built run) lets auto weigh the work per step; without it only the free cores count."""
    asked = int(cfg.get("threads", 0) or 0)
    if asked > 0:
        return ThreadChoice(asked, "option", "set by you")
    env = env_threads()
    if env is not None:
        return ThreadChoice(env, "env", f"OMP_NUM_THREADS={env}")
    cpus = usable_cores()
    cores = float(len(cpus))
    quota = cgroup_quota()
    if quota is not None and quota < cores:
        cores = quota
    busy, _how = busy_cores(cpus)
    busy = busy * cores / max(1, len(cpus))  # a quota below the CPU count shares the same load
    gmac = None
    if parts is not None and parts.device.type == "cpu":
        try:
            gmac = step_gmac(parts, int(cfg.get("batch_size", 1)), int(cfg.get("n_critic", 1)))
        except Exception:  # a step that cannot run on copies (wrapped networks, ...): weigh the free cores only
            gmac = None
    n, why = decide(cores, busy, gmac)
    return ThreadChoice(n, "auto", why)


def apply(choice: ThreadChoice) -> int:
    """Set torch's intra-op thread count to ``choice.threads``; returns the previous count."""
    import torch

    before = torch.get_num_threads()
    if before != choice.threads:
        torch.set_num_threads(choice.threads)
    return before
