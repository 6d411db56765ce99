"""The one training loop every architecture shares.

Per step: ``n_critic`` discriminator updates, then one generator update; zero-grad, backward,
optimiser step, ``requires_grad`` off for the group not being updated. The trainer owns seeding,
device, EMA, checkpoints, sample grids, progress, logging and callbacks. It knows no architecture
by name: everything architecture-specific comes from the spec and its :class:`Step`.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from typing import Any, Iterable, Mapping

import torch

from .. import __version__
from ..errors import GanzooError
from ..data.augment import make_augment
from ..data.loader import BatchLoader, write_skipped_images
from .build import RunParts, build_run, load_weights
from .checkpoint import load_latest_checkpoint, write_history_checkpoint
from . import distributed
from .distributed import is_main
from .interrupt import StopSignal, TrainingStopped
from .plots import save_image_grid, save_loss_curve, save_scatter
from .rundir import CHECKPOINTS_PER_RUN, SAMPLES_PER_RUN, RunDir
from .rundir import every as _every


class Callback:
    """Hooks into the loop; override what you need. ``logs`` holds averaged losses on log steps."""

    def on_train_start(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, logs: Mapping[str, float] | None) -> None: ...
    def on_checkpoint(self, trainer: "Trainer", step: int) -> None: ...
    def on_samples(self, trainer: "Trainer", step: int, path) -> None: ...
    def on_stop(self, trainer: "Trainer", step: int, reason: str) -> None: ...
    def on_train_end(self, trainer: "Trainer", results: Mapping[str, Any]) -> None: ...


class Sampler:
    """Epoch-wise shuffling with its own generator; its state is checkpointed for exact resume."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.gen = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.gen)
        self.pos = 0

    def next(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.gen)
                self.pos = 0
            take = min(k, self.n - self.pos)
            out.append(self.perm[self.pos : self.pos + take])
            self.pos += take
            k -= take
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, s: Mapping[str, Any]) -> None:
        self.gen.set_state(s["gen"])
        self.perm = s["perm"]
        self.pos = int(s["pos"])


def _requires_grad(params: list[torch.Tensor], flag: bool) -> None:
    for q in params:
        q.requires_grad_(flag)


def _why_stopped(exc: BaseException) -> str:
    if isinstance(exc, TrainingStopped):
        return exc.message
    return f"failed: {str(exc).splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}"


class Trainer:
    def __init__(self, cfg: Mapping[str, Any], run_dir: RunDir, callbacks: Iterable[Callback] = (),
                 quiet: bool = False, parts: RunParts | None = None, report: bool = True):
        self.cfg = dict(cfg)
        self.rd = run_dir
        self.callbacks = list(callbacks)
        if report:  # report.html and TensorBoard events in the run directory (rank 0 only)
            from ..report.callback import RunReport

            self.callbacks.insert(0, RunReport(quiet=quiet))
        self.stop = StopSignal()  # SIGINT/SIGTERM: finish the step, checkpoint, stop
        self._log: dict[str, Any] = {"sums": {}, "count": 0}  # losses summed since the last log line
        self.quiet = quiet
        distributed.init()  # under torchrun: join the process group (no-op in one process)
        self.p = parts or build_run(self.cfg, device=distributed.process_device(str(self.cfg.get("device", "auto"))),
                                           quiet=quiet)
        self.start_step = 0
        self.stop_requested = False  # set by anything (a callback); every process stops at the same step end
        self.dist = self._parallel()
        seed = int(self.cfg.get("seed", 0))
        self.sampler = Sampler(len(self.p.dataset), seed + 2)
        self.sampler_b = Sampler(self.p.dataset.len_b, seed + 3) if self.p.dataset.len_b else None
        # data hook: batches gathered ahead in a thread, augmented on the device (ganzoo/data/loader.py)
        self.loader = BatchLoader(self.p.train_data, self.sampler, self.sampler_b, int(self.cfg["batch_size"]),
                                  self.p.device, make_augment(self.cfg, self.p.dataset, self.p.train_data),
                                  local=self.dist.local)
        self.opt = {g: self._optimizer(g) for g in ("G", "D")}
        self.base_lr = {g: [pg["lr"] for pg in self.opt[g].param_groups] for g in ("G", "D")}
        # each group's parameters, listed once: walking the modules for them on every requires_grad
        # toggle cost 0.03-0.3 ms (vanilla, DCGAN) to ~3 ms (CycleGAN) on a busy 2-core CPU, five toggles a step
        self.params = {g: [q for pg in self.opt[g].param_groups for q in pg["params"]] for g in ("G", "D")}
        self._ema_lists: list | None = None
        self.fixed = self.p.step.fixed_inputs(self.p.ctx, self.p.dataset, 64, seed + 4)
        self.results: dict[str, Any] = {}

    # -- setup ----------------------------------------------------------------------------------
    def _parallel(self) -> distributed.Replicas:
        """GPU options, then the data-parallel wrappers (identity in one process); see accel.py and
        distributed.py."""
        from .accel import prepare_nets

        prepare_nets(self.p, self.cfg)
        rep = distributed.Replicas(self.p.nets, self.p.spec.groups, self.p.device, int(self.cfg["batch_size"]),
                                   sync_bn=bool(self.cfg.get("sync_bn", True)))
        self.p.ctx.rank, self.p.ctx.world_size, self.p.ctx.all_gather = rep.rank, rep.world, rep.all_gather()
        return rep

    def _optimizer(self, group: str) -> torch.optim.Optimizer:
        from .accel import optimizer_options

        params = [p for n in self.p.spec.groups[group] for p in self.p.nets[n].parameters()]
        lr = float(self.cfg["lr_g" if group == "G" else "lr_d"])
        if self.cfg["optimizer"] == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=(float(self.cfg["beta1"]), float(self.cfg["beta2"])),
                                **optimizer_options(self.cfg, self.p.device))

    def resume(self) -> None:
        """Load the run directory's checkpoint: weights, optimisers, RNG states, data position.

        ``last.pt``, or the newest readable ``step_XXXXXX.pt`` when it is damaged (one warning line).
        """
        state, _ = load_latest_checkpoint(self.rd.checkpoint_path.parent)
        load_weights(self.p, state)
        try:
            for g in ("G", "D"):
                self.opt[g].load_state_dict(state["optim"][g])
            rng = state["rng"]
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            if self.p.device.type == rng.get("noise_device", "cpu"):
                self.p.ctx.generator.set_state(rng["noise"])
            self.loader.load_state_dict(rng)  # samplers and augmentation
            self.p.step.load_state_dict(state.get("step_state", {}))
            log = state.get("log") or {"sums": {}, "count": 0}
            self._log = {"sums": {k: v.to(self.p.device) for k, v in log["sums"].items()}, "count": int(log["count"])}
        except (KeyError, ValueError, RuntimeError) as exc:
            raise GanzooError(f"checkpoint {self.rd.checkpoint_path} is incomplete ({exc}); start a new run") from None
        self.start_step = int(state["step"])

    def state_dict(self, step: int) -> dict[str, Any]:
        p = self.p
        return {
            "ganzoo_version": __version__,
            "arch": p.spec.name,
            "step": step,
            "nets": {k: v.state_dict() for k, v in p.nets.items()},
            "ema": {k: v.state_dict() for k, v in p.ema.items()},
            "optim": {g: o.state_dict() for g, o in self.opt.items()},
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if p.device.type == "cuda" else [],
                "noise": p.ctx.generator.get_state(),
                "noise_device": p.device.type,
                **self.loader.state_dict(),  # "sampler", "sampler_b" (and "augment" when on)
            },
            "step_state": p.step.state_dict(),
            # losses summed since the last log line: a resumed run logs the same averages
            "log": {"sums": {k: v.detach().cpu() for k, v in self._log["sums"].items()}, "count": self._log["count"]},
        }

    # -- pieces of the loop ---------------------------------------------------------------------
    def next_batch(self):
        # the sampler draws the global batch's indices in every process; each gathers its own rows
        # (the loader slices them with self.dist.local, one batch ahead in a thread; ganzoo/data/loader.py)
        batch = self.loader.next()
        if self.cfg.get("channels_last") and batch.real.dim() == 4:
            from .accel import to_channels_last

            batch = to_channels_last(batch)
        return batch

    def _autocast(self):
        if self.cfg.get("amp") and self.p.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _set_lr(self, step: int) -> None:
        f, total = self.p.spec.lr_factor, int(self.cfg["steps"])
        start = float(self.cfg.get("lr_decay", 1.0)) * total
        if f is not None:
            factor = float(f(step, total))
        elif start < total:  # constant, then linear decay to 0 at the last step
            factor = 1.0 if step <= start else max(0.0, (total - step) / (total - start))
        else:
            return
        for g in ("G", "D"):
            for pg, base in zip(self.opt[g].param_groups, self.base_lr[g]):
                pg["lr"] = base * factor

    @torch.no_grad()
    def _ema_update(self) -> None:
        # Warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates): early on the decay is
        # lower, so the average does not keep a large share of the random initial weights.
        step = self.p.ctx.step
        decay = min(float(self.cfg["ema"]), (1.0 + step) / (10.0 + step))
        if self._ema_lists is None:  # (EMA, network) tensor pairs, listed once (see self.params)
            pairs = [(e, self.p.nets[n]) for n, e in self.p.ema.items()]
            self._ema_lists = [(list(zip(e.parameters(), n.parameters())), list(zip(e.buffers(), n.buffers())))
                               for e, n in pairs]
        for params, buffers in self._ema_lists:
            for pe, pn in params:
                pe.lerp_(pn.detach(), 1.0 - decay)
            for be, bn in buffers:
                be.copy_(bn)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        p, ctx = self.p, self.p.ctx
        ctx.step = step
        self._set_lr(step)
        logs: dict[str, torch.Tensor] = {}
        _requires_grad(self.params["G"], False)
        _requires_grad(self.params["D"], True)
        ctx.nets = self.dist.nets_for("D")  # data-parallel: D through DDP, G plain (distributed.py)
        for _ in range(int(self.cfg["n_critic"])):
            batch = self.next_batch()
            self.opt["D"].zero_grad(set_to_none=True)
            with self._autocast():
                out = p.step.d_step(ctx, batch)
            out["loss"].backward()
            self.opt["D"].step()
            p.step.after_d_update(ctx)
        logs.update({f"d_{k}": v.detach() for k, v in out.items()})
        _requires_grad(self.params["G"], True)
        _requires_grad(self.params["D"], False)
        ctx.nets = self.dist.nets_for("G")
        self.opt["G"].zero_grad(set_to_none=True)
        with self._autocast():
            out = p.step.g_step(ctx, batch)
        out["loss"].backward()
        self.opt["G"].step()
        ctx.nets = p.nets
        _requires_grad(self.params["D"], True)
        logs.update({f"g_{k}": v.detach() for k, v in out.items()})
        if p.ema:
            self._ema_update()
        return logs

    @torch.no_grad()
    def write_samples(self, step: int) -> None:
        if not is_main():
            return
        p = self.p
        nets = p.sample_nets()
        modes = {n: m.training for n, m in nets.items()}
        for m in nets.values():
            m.eval()
        try:
            pv = p.step.preview(p.ctx, self.fixed, nets=nets)
        finally:
            for n, m in nets.items():
                m.train(modes[n])
        path = self.rd.sample_path(step)
        if pv.points is not None:
            real = p.dataset.all_real(2000)
            save_scatter(pv.points, real, path, title=f"{p.spec.name} on {p.dataset.info.name}, step {step}")
        elif pv.images is not None:
            save_image_grid(pv.images, path, nrow=pv.nrow)
        else:
            return
        for cb in self.callbacks:
            cb.on_samples(self, step, path)

    def checkpoint(self, step: int) -> None:
        """``checkpoints/step_XXXXXX.pt`` and ``last.pt`` (the newest ``keep_checkpoints`` kept).

        Raises :class:`~ganzoo.engine.checkpoint.CheckpointWriteError` (previous checkpoint intact)
        when the disk is full.
        """
        if is_main():
            write_history_checkpoint(self.rd.checkpoint_path.parent, step, self.state_dict(step),
                                     keep=int(self.cfg.get("keep_checkpoints", 2)))
        self._saved_step = step
        for cb in self.callbacks:
            cb.on_checkpoint(self, step)

    def choose_threads(self) -> int:
        """Pick and set torch's intra-op thread count (see :mod:`ganzoo.engine.threads`), record it in
        the config's ``decisions``; returns the count in force before."""
        from . import threads

        self.thread_choice = threads.choose(self.cfg, self.p)
        self.cfg.setdefault("decisions", {}).update(threads=self.thread_choice.threads, threads_why=self.thread_choice.why)
        return threads.apply(self.thread_choice)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        cfg = self.cfg
        total = int(cfg["steps"])
        if self.start_step >= total:
            raise distributed.EveryRankError(
                f"the run in {self.rd.path} is already at step {self.start_step}; pass --steps larger than that to continue"
            )
        prev_threads = self.choose_threads()
        if is_main():
            self.rd.create()
            self.rd.write_config(cfg)
            self.rd.truncate_metrics_after(self.start_step)
            write_skipped_images(self.rd.path, self.p.train_data)
        sample_every = _every(int(cfg["sample_every"]), total, SAMPLES_PER_RUN)
        ckpt_every = _every(int(cfg["checkpoint_every"]), total, CHECKPOINTS_PER_RUN)
        log_every = max(1, int(cfg["log_every"]))
        for net in self.p.nets.values():
            net.train()
        for cb in self.callbacks:
            cb.on_train_start(self)
        if self.start_step == 0:
            self.write_samples(0)
        bar = tqdm(total=total, initial=self.start_step, desc=f"{self.p.spec.name}", unit="step",
                   disable=self.quiet or not sys.stderr.isatty() or not is_main(), file=sys.stderr, dynamic_ncols=True)
        sums: dict[str, torch.Tensor] = self._log["sums"]
        count = self._log["count"]
        self._saved_step = self.start_step
        t0 = time.perf_counter()
        restore_signals = self.stop.install()
        try:
            for step in range(self.start_step + 1, total + 1):
                out = self.train_step(step)
                self.dist.watch(step, out)
                for k, v in out.items():
                    sums[k] = sums[k] + v.float() if k in sums else v.float().clone()
                count += 1
                self._log = {"sums": sums, "count": count}
                logs = None
                if step % log_every == 0 or step == total:
                    sums, where = self.dist.mean_over_ranks(sums)  # every process gets the same means
                    logs = {k: round(float(v) / count, 6) for k, v in sums.items()}
                    bad = [k for k, v in logs.items() if v != v or abs(v) == float("inf")]
                    if bad:
                        raise distributed.EveryRankError(
                            f"training diverged at step {step}: {', '.join(bad)} is not finite{where}; "
                            "lower the learning rate (--lr) or try another --loss"
                        )
                    sums, count = {}, 0
                    self._log = {"sums": sums, "count": count}
                    if is_main():
                        self.rd.append_metrics({"step": step, **logs})
                    bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("d_loss", "g_loss")})
                bar.update(1)
                if step % sample_every == 0 or step == total:
                    self.write_samples(step)
                if step % ckpt_every == 0 or step == total:
                    self.dist.check_in_step()
                    self.checkpoint(step)
                for cb in self.callbacks:
                    cb.on_step_end(self, step, logs)
                # the one stop check: a stop asked by code (stop_requested) or by SIGINT/SIGTERM (self.stop),
                # agreed by every process so that all of them stop at this same step
                if distributed.any_rank(self.stop_requested or self.stop.requested()):
                    if self._saved_step != step:
                        self.checkpoint(step)
                    if self.stop.requested() and step < total:  # the CLI prints the resume command, exits 130/143
                        raise TrainingStopped(step, str(self.rd.path), self.p.spec.name, self.stop.signum)
                    self.results["stopped_at"] = step
                    break
        except KeyboardInterrupt:  # a second signal (or one while the handlers were not ours)
            stopped = TrainingStopped(self._saved_step, str(self.rd.path), self.p.spec.name,
                                      self.stop.signum or signal.SIGINT, aborted=True)
            for cb in self.callbacks:
                cb.on_stop(self, self._saved_step, stopped.message)
            raise stopped from None
        except BaseException as exc:
            for cb in self.callbacks:
                cb.on_stop(self, self._saved_step, _why_stopped(exc))
            raise
        finally:
            restore_signals()
            bar.close()
            self.loader.close()
            torch.set_num_threads(prev_threads)  # a Python session that trains gets its own count back
        self.results["seconds"] = round(time.perf_counter() - t0, 2)
        self.results["steps"] = self.results.get("stopped_at", total)
        if is_main() and "stopped_at" not in self.results:
            save_loss_curve(self.rd.read_metrics(), self.rd.path / "loss_curve.png", title=f"{self.p.spec.name} on {self.p.dataset.info.name}")
            self.results.update(self.evaluate())
        for cb in self.callbacks:
            cb.on_train_end(self, self.results)
        return self.results

    def evaluate(self) -> dict[str, Any]:
        """End-of-run metrics that are cheap enough to always compute (2D data: mode coverage)."""
        from ..metrics.evaluate import quick_metrics

        record = quick_metrics(self.p)
        if record:
            self.rd.append_metrics({"step": int(self.cfg["steps"]), "eval": record})
        return record
