"""The training-loop side of reports: TensorBoard events as the run goes, ``report.html`` refreshed
at every checkpoint, on a stop and at the end. Rank 0 only; nothing here syncs with the device per
step (losses arrive as floats on log steps, learning rates are Python numbers)."""

from __future__ import annotations

import sys
from typing import Any, Mapping

from ..engine.distributed import is_main
from .tensorboard import INSTALL_HINT, TensorBoard


class RunReport:
    """A trainer callback (see :class:`ganzoo.engine.trainer.Callback`) writing TensorBoard events
    and ``report.html`` into the run directory. A failing write (a full disk) is reported once and
    never stops the run: the checkpoint is what must succeed."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.tb: TensorBoard | None = None
        self._warned = False

    def _warn(self, what: str, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            print(f"ganzoo: warning: cannot write {what} ({exc}); training goes on", file=sys.stderr, flush=True)

    def _refresh(self, trainer, status: str) -> None:
        from .html import write_run_report

        try:
            write_run_report(trainer.rd.path, status)
        except OSError as exc:
            self._warn("report.html", exc)

    def _tb(self, fn, *args) -> None:
        if self.tb is None:
            return
        try:
            fn(*args)
        except OSError as exc:
            self._warn("TensorBoard events", exc)

    # -- callback hooks -------------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        if not is_main():
            return
        if trainer.cfg.get("tensorboard", True):
            self.tb = TensorBoard.open(trainer.rd.path, trainer.start_step)
            if self.tb is None and not self.quiet:
                print(f"ganzoo: TensorBoard events off: tensorboardX is not installed ({INSTALL_HINT})",
                      file=sys.stderr, flush=True)
            self._tb(lambda: self.tb.hparams(trainer.cfg, ["loss/d_loss", "loss/g_loss"]))
        self._refresh(trainer, f"running (from step {trainer.start_step})" if trainer.start_step else "running")

    def on_step_end(self, trainer, step: int, logs: Mapping[str, float] | None) -> None:
        if logs is None or self.tb is None:
            return
        lrs = {g: o.param_groups[0]["lr"] for g, o in trainer.opt.items()}
        self._tb(self.tb.scalars, step, logs, "loss")
        self._tb(self.tb.scalars, step, lrs, "lr")

    def on_samples(self, trainer, step: int, path) -> None:
        if is_main():
            self._tb(self.tb and self.tb.image, "samples", path, step)

    def on_checkpoint(self, trainer, step: int) -> None:
        if not is_main():
            return
        self._tb(self.tb and self.tb.flush)
        total = int(trainer.cfg["steps"])
        self._refresh(trainer, "finished" if step >= total else f"running: checkpoint at step {step}")

    def on_stop(self, trainer, step: int, reason: str) -> None:
        if not is_main():
            return
        self._refresh(trainer, reason)
        self._close()

    def on_train_end(self, trainer, results: Mapping[str, Any]) -> None:
        if not is_main():
            return
        if "stopped_at" in results:  # a stop asked by code: checkpointed, no end-of-run evaluation
            self._refresh(trainer, f"stopped at step {results['stopped_at']} (a stop was requested)")
        else:
            metrics = {k: v for k, v in results.items() if k not in ("seconds", "steps")}
            self._tb(self.tb and self.tb.scalars, int(trainer.cfg["steps"]), metrics, "eval")
            self._refresh(trainer, "finished")
        self._close()

    def _close(self) -> None:
        if self.tb is not None:
            self._tb(self.tb.close)
            self.tb = None
