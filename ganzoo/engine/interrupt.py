"""Graceful stop on SIGINT (Ctrl-C) and SIGTERM (cloud preemption, SLURM, ``docker stop``).

The first signal only raises a flag: the training loop finishes the step it is in, writes a
checkpoint and raises :class:`TrainingStopped`, which the CLI turns into the resume command and
exit status 128 + signal number (130 for SIGINT, 143 for SIGTERM, the shell's convention). A second
Ctrl-C (SIGINT) while the loop is finishing aborts at once (``KeyboardInterrupt``), keeping the
previous checkpoint; a SIGTERM after the first signal changes nothing (SLURM and docker signal every
process, and torchrun passes signals on to its workers as SIGTERM). The handlers are installed by :meth:`StopSignal.install` for the duration of a run and
only in the main thread (Python delivers signals there); the previous handlers are restored after.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(Exception):
    """Training stopped on a signal after checkpointing ``step`` in ``run_dir``.

    ``exit_code`` is 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
    """

    def __init__(self, step: int, run_dir: str, arch: str, signum: int, aborted: bool = False):
        self.step, self.run_dir, self.arch, self.signum = step, run_dir, arch, signum
        self.aborted = aborted  # a second signal: stopped at once, ``step`` is the previous checkpoint
        self.exit_code = 128 + int(signum)
        super().__init__(self.message)

    @property
    def resume_command(self) -> str:
        import shlex

        return f"ganzoo train {self.arch} --resume {shlex.quote(self.run_dir)}"

    @property
    def message(self) -> str:
        name = signal.Signals(self.signum).name
        if self.aborted:
            kept = f"the checkpoint of step {self.step} is kept" if self.step else "no checkpoint was written yet"
            return f"{name}: aborted at once; {kept}; resume with: {self.resume_command}"
        return f"{name}: stopped at step {self.step}; resume with: {self.resume_command}"


class StopSignal:
    """The stop flag the loop checks once per step (:meth:`requested`); set by a signal or by code."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask the loop to stop after the current step, as the signal ``signum`` would."""
        if self.signum is None:
            self.signum = int(signum)

    def requested(self) -> bool:
        """True once a stop was asked for. Cheap (no host-device sync): call it at every step end."""
        return self.signum is not None

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.signum is not None:
            # A second Ctrl-C: the user does not want to wait. A repeated SIGTERM is not that: SLURM
            # and docker signal every process and torchrun passes the signal on again (a terminal's
            # Ctrl-C reaches torchrun and its workers at once, and torchrun then sends them SIGTERM).
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.request(signum)
        import os
        import sys

        if os.environ.get("RANK", "0") != "0":  # under torchrun every process got it; one says so
            return
        name = signal.Signals(signum).name
        print(f"ganzoo: {name} received: finishing the current step and saving a checkpoint "
              "(press Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def install(self) -> Callable[[], None]:
        """Handle SIGINT and SIGTERM with this flag; returns the function that restores the
        previous handlers. Outside the main thread (where Python delivers no signals) a no-op."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}
        for sig in SIGNALS:
            prev = signal.getsignal(sig)
            signal.signal(sig, self._handle)
            previous[sig] = signal.SIG_DFL if prev is None else prev  # None: set outside Python

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore
