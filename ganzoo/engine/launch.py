"""``ganzoo train ARCH --nproc N``: the same command line in N processes, started by torchrun's own
launcher (:mod:`torch.distributed.run`, standalone rendezvous on a free local port).

The launcher's agent runs in this process; when a worker fails it stops the others at once (no
restarts) and this returns the failed worker's exit status. The worker printed its own one-line
error, so the agent's multi-line report is not repeated here.
"""

from __future__ import annotations

import logging
import os
import sys

from ..errors import GanzooError


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (the workers run the rest as it is)."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m ganzoo ARGV`` (``--nproc`` removed) in ``nproc`` local processes; returns the
    exit status (0, or the first failed worker's)."""
    if not any(a == "--nproc" or a.startswith("--nproc=") for a in argv):
        raise GanzooError("--nproc restarts the 'ganzoo' command line, which this call does not have; "
                          "start the processes with torchrun instead (docs/distributed.md)")
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # CPU processes share the cores (torchrun would print a banner and use 1 thread each)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    args = torchrun.parse_args([
        "--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.2",
        "-m", "ganzoo", *strip_nproc(argv),
    ])
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        torchrun.run(args)
    except SignalException as exc:  # SIGINT/SIGTERM: the agent passed it on and waited for the workers,
        return 128 + int(exc.sigval)  # which checkpointed; rank 0 printed the resume command
    except ChildFailedError as exc:
        if not exc.failures:
            return 1
        rank, failure = exc.get_first_failure()
        code = int(failure.exitcode or 1)
        if code != 2:  # 2: the worker printed its user error; otherwise it may have died without a word
            how = f"signal {-code}" if code < 0 else f"exit status {code}"
            print(f"ganzoo: error: rank {rank} of {nproc} stopped ({how}); the other processes were stopped too. "
                  "Its own output above says why, if it could", file=sys.stderr)
        return code if code > 0 else 1
    return 0
