"""Training throughput: the ganzoo engine's step against a bare hand-written loop, side by side.

For each case (vanilla on 2D ring8 at batch 256, DCGAN 64x64 at batch 64, CycleGAN 128x128 at batch 1
and 8; random smooth RGB images, as benchmarks/onnx_zoo.py) one ``Trainer.fit()`` runs and, from a
callback, every ``K`` engine steps hands the CPU to the other loops for ``K`` steps each:

* ``engine``  -- ``Trainer.fit()`` as ``ganzoo train`` runs it (logging every ``log_every`` steps,
  callbacks, progress, learning-rate schedule, EMA when the architecture keeps one); sample grids and
  checkpoints are timed once each and reported per step at the run's default intervals;
* ``bare``    -- a hand-written loop over copies of the *same* networks (same initial weights), the
  same loss functions, penalty and Adam settings: no engine, no callbacks, no logging;
* ``pytorch-gan`` (DCGAN only) -- a loop written the way PyTorch-GAN's ``implementations/dcgan/dcgan.py``
  trains: its own DCGAN (Linear + Upsample/Conv generator, Conv/Dropout discriminator with a sigmoid),
  BCE, Adam(2e-4, (0.5, 0.999)), at the same batch and image size.

So one round is engine K steps, bare K steps, (pytorch-gan K steps); the figure per loop is the
median over rounds of its mean step time in that round, and the engine's cost is the median of the
within-round ratios engine / bare (the machine's speed drifts: a ratio taken within a round is not
moved by it). Goal: <= 1.05x. The DCGAN case trains with ``--loss ns --penalty none`` so that all
three loops do the same work as PyTorch-GAN's BCE (ganzoo's DCGAN default adds an R1 penalty).

    python benchmarks/train_throughput.py                    # ~10 min on 2 shared cores
    python benchmarks/train_throughput.py --cases dcgan --rounds 9
    python benchmarks/train_throughput.py --set compile=true --out benchmarks/results/train_throughput_compile.json
    python benchmarks/train_throughput.py --from-json benchmarks/results/train_throughput.json   # table only

Writes benchmarks/results/train_throughput.json (records, machine, load average before/after).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
RESULTS = ROOT / "benchmarks" / "results" / "train_throughput.json"
GOAL = 1.05  # engine step time / bare step time, median of within-round ratios

# name -> (architecture, data kind, image size, batch, steps per segment K, settings)
CASES = {
    "vanilla-2d": ("vanilla", "ring8", 0, 256, 40, {}),
    "dcgan-64": ("dcgan", "rgb", 64, 64, 4, {"loss": "ns", "penalty": "none"}),
    "cyclegan-128-b1": ("cyclegan", "unpaired", 128, 1, 4, {}),
    "cyclegan-128-b8": ("cyclegan", "unpaired", 128, 8, 2, {}),
}


# -- statistics (tested on made-up records in tests/test_train_throughput_summary.py) ---------------

def within_round_ratios(num: list[float], den: list[float]) -> list[float]:
    """``num[i] / den[i]`` for each round measured by both (a round missing on either side is skipped)."""
    return [round(a / b, 4) for a, b in zip(num, den) if a and b]


def summarise_case(rec: dict) -> dict:
    """One case's figures from its per-round step times (seconds): per loop the median step time and
    images/s; engine / bare and pytorch-gan / bare as medians of within-round ratios; the goal check.
    The engine's amortised extras (sample grids, checkpoints at the run's default intervals) are added
    to its step time in ``engine_with_writes_ms``."""
    rounds = rec["rounds_s"]
    batch = rec["batch_size"]
    out: dict = {"case": rec["case"], "arch": rec["arch"], "batch_size": batch, "rounds": len(rounds.get("engine", []))}
    for loop, times in rounds.items():
        if times:
            med = statistics.median(times)
            out[f"{loop}_ms"] = round(med * 1e3, 3)
            out[f"{loop}_images_per_s"] = round(batch / med, 2)
    for loop in ("engine", "pytorch-gan"):
        if rounds.get(loop) and rounds.get("bare"):
            per = within_round_ratios(rounds[loop], rounds["bare"])
            if per:
                out[f"{loop}_vs_bare"] = round(statistics.median(per), 3)
                out[f"{loop}_vs_bare_rounds"] = per
    extra = sum(rec.get("amortised_ms", {}).values())
    if "engine_ms" in out:
        out["engine_with_writes_ms"] = round(out["engine_ms"] + extra, 3)
    ratio = out.get("engine_vs_bare")
    out["goal"] = f"engine / bare <= {GOAL}"
    out["pass"] = None if ratio is None else ratio <= GOAL
    return out


def summarise(records: list[dict]) -> dict:
    rows = [summarise_case(r) for r in records]
    judged = [r for r in rows if r["pass"] is not None]
    return {"rows": rows, "all_pass": bool(judged) and all(r["pass"] for r in judged),
            "missed": [r["case"] for r in judged if not r["pass"]]}


def table(summary: dict) -> str:
    head = (f"{'case':<17} {'batch':>5} {'engine ms':>10} {'bare ms':>9} {'engine/bare':>12} {'range':>13} "
            f"{'pgan ms':>9} {'engine img/s':>12} {'pgan img/s':>10}")
    lines = [head, "-" * len(head)]
    for r in summary["rows"]:
        per = r.get("engine_vs_bare_rounds") or []
        rng = f"{min(per):.2f}-{max(per):.2f}" if per else "-"
        f = lambda k, fmt="{:.1f}": fmt.format(r[k]) if r.get(k) is not None else "-"  # noqa: E731
        lines.append(f"{r['case']:<17} {r['batch_size']:>5} {f('engine_ms'):>10} {f('bare_ms'):>9} "
                     f"{f('engine_vs_bare', '{:.3f}x'):>12} {rng:>13} {f('pytorch-gan_ms'):>9} "
                     f"{f('engine_images_per_s'):>12} {f('pytorch-gan_images_per_s'):>10}")
    return "\n".join(lines)


# -- the loops --------------------------------------------------------------------------------------

def _engine_trainer(arch: str, kind: str, size: int, batch: int, settings: dict, sets: list[str], work: Path):
    from ganzoo.engine.config import flatten_user, parse_assignment, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry
    from onnx_zoo import data_arg

    reg = get_registry()
    spec = reg.get("architecture", arch)
    run = {"seed": 0, "device": "cpu", "batch_size": batch, "steps": 10**6, "sample_every": 10**9,
           "checkpoint_every": 10**9, **data_arg(kind, size, work), **settings}
    if not size:
        run.pop("image_size", None)
    for text in sets:
        _, key, value = parse_assignment(spec, text)
        run[key] = value
    r, h = flatten_user(spec, {}, run)
    cfg = resolve(reg, spec, r, h)
    return Trainer(cfg, RunDir(str(work / f"run-{arch}")), quiet=True)


class Bare:
    """The same networks (copies, same initial weights), losses, penalty and optimisers, by hand."""

    def __init__(self, trainer):
        import torch

        p = trainer.p
        self.cfg, self.step_obj = trainer.cfg, p.step
        self.nets = {k: copy.deepcopy(v).train() for k, v in p.nets.items()}
        self.ema = {k: copy.deepcopy(v) for k, v in p.ema.items()}
        self.loss, self.penalty, self.pw = p.ctx.loss, p.ctx.penalty, p.ctx.penalty_weight
        self.g_names, self.d_names = p.spec.groups["G"], p.spec.groups["D"]
        params = lambda names: [q for n in names for q in self.nets[n].parameters()]  # noqa: E731
        lr_g, lr_d = float(self.cfg["lr_g"]), float(self.cfg["lr_d"])
        betas = (float(self.cfg["beta1"]), float(self.cfg["beta2"]))
        self.opt_g = torch.optim.Adam(params(self.g_names), lr=lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(params(self.d_names), lr=lr_d, betas=betas)
        self.d_params = params(self.d_names)
        self.gen = torch.Generator().manual_seed(1)
        self.data = p.dataset
        self.batch = int(self.cfg["batch_size"])
        self.latent = int(p.ctx.latent_dim)
        self.n_critic = int(self.cfg["n_critic"])
        self.image_to_image = bool(getattr(p.step, "image_to_image", False))
        if self.image_to_image:
            self.pools = copy.deepcopy(p.step.pools)
        self.decay = float(self.cfg.get("ema", 0.0))
        self.t = 0

    def _batch(self):
        import torch

        ds = self.data
        idx = torch.randint(0, len(ds), (self.batch,), generator=self.gen)
        idx_b = torch.randint(0, ds.len_b, (self.batch,), generator=self.gen) if ds.len_b else None
        return ds.get(idx, idx_b)

    def _d_loss(self, d, real, fake):
        out = self.loss.d_loss(d(real), d(fake))
        if self.penalty is not None and self.pw:
            out = out + self.pw * self.penalty.fn(d, real, fake, generator=self.gen)
        return out

    def step(self) -> None:
        import torch
        import torch.nn.functional as F

        n = self.nets
        for _ in range(self.n_critic):
            b = self._batch()
            self.opt_d.zero_grad(set_to_none=True)
            if self.image_to_image:
                with torch.no_grad():
                    fake_b, fake_a = n["G_AB"](b.real), n["G_BA"](b.real_b)
                fake_a = self.pools["A"].query(fake_a, self.gen, fake_a.device)
                fake_b = self.pools["B"].query(fake_b, self.gen, fake_b.device)
                loss = self._d_loss(n["D_A"], b.real, fake_a) + self._d_loss(n["D_B"], b.real_b, fake_b)
            else:
                with torch.no_grad():
                    fake = n["G"](torch.randn(self.batch, self.latent, generator=self.gen))
                loss = self._d_loss(n["D"], b.real, fake)
            loss.backward()
            self.opt_d.step()
        for q in self.d_params:  # the critic's weights need no gradient in the generator's update
            q.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        if self.image_to_image:
            a, bb = b.real, b.real_b
            lam = float(self.step_obj.hp["lambda_cycle"])
            fake_b, fake_a = n["G_AB"](a), n["G_BA"](bb)
            loss = (self.loss.g_loss(n["D_B"](fake_b)) + self.loss.g_loss(n["D_A"](fake_a))
                    + lam * (F.l1_loss(n["G_BA"](fake_b), a) + F.l1_loss(n["G_AB"](fake_a), bb)))
        else:
            loss = self.loss.g_loss(n["D"](n["G"](torch.randn(self.batch, self.latent, generator=self.gen))))
        loss.backward()
        self.opt_g.step()
        for q in self.d_params:
            q.requires_grad_(True)
        if self.ema:
            self.t += 1
            decay = min(self.decay, (1.0 + self.t) / (10.0 + self.t))
            with torch.no_grad():
                for name, e in self.ema.items():
                    torch._foreach_lerp_(list(e.parameters()), list(n[name].parameters()), 1.0 - decay)


class PyTorchGANStyle:
    """A DCGAN loop the way PyTorch-GAN's dcgan.py is written: its own networks (a Linear projection to
    ``size/4`` squared, two Upsample + 3x3 Conv + BatchNorm(eps 0.8) + LeakyReLU stages, Tanh; a
    discriminator of four stride-2 Conv + LeakyReLU + Dropout(0.25) (+ BatchNorm) blocks and a Linear +
    Sigmoid head), nn.BCELoss, Adam(2e-4, (0.5, 0.999)); D's gradients from the generator's loss are
    computed and thrown away by the next zero_grad, as there."""

    def __init__(self, channels: int, size: int, batch: int, latent: int = 100):
        import torch
        from torch import nn

        init = size // 4

        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.l1 = nn.Linear(latent, 128 * init * init)
                self.blocks = nn.Sequential(
                    nn.BatchNorm2d(128), nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, 1, 1),
                    nn.BatchNorm2d(128, 0.8), nn.LeakyReLU(0.2, inplace=True), nn.Upsample(scale_factor=2),
                    nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2, inplace=True),
                    nn.Conv2d(64, channels, 3, 1, 1), nn.Tanh())

            def forward(self, z):
                return self.blocks(self.l1(z).view(z.shape[0], 128, init, init))

        def block(cin, cout, bn=True):
            layers = [nn.Conv2d(cin, cout, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            return layers + ([nn.BatchNorm2d(cout, 0.8)] if bn else [])

        class D(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = nn.Sequential(*block(channels, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128))
                self.head = nn.Sequential(nn.Linear(128 * (size // 16) ** 2, 1), nn.Sigmoid())

            def forward(self, x):
                return self.head(self.model(x).flatten(1))

        self.G, self.D = G(), D()
        self.loss = nn.BCELoss()
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batch, self.latent, self.channels, self.size = batch, latent, channels, size
        self.gen = torch.Generator().manual_seed(2)
        self.images = torch.rand(512, channels, size, size, generator=self.gen) * 2 - 1

    def step(self) -> None:
        import torch

        real = self.images[torch.randint(0, len(self.images), (self.batch,), generator=self.gen)]
        valid, fake_t = torch.ones(self.batch, 1), torch.zeros(self.batch, 1)
        self.opt_g.zero_grad()
        gen_imgs = self.G(torch.randn(self.batch, self.latent, generator=self.gen))
        g_loss = self.loss(self.D(gen_imgs), valid)
        g_loss.backward()
        self.opt_g.step()
        self.opt_d.zero_grad()
        d_loss = (self.loss(self.D(real), valid) + self.loss(self.D(gen_imgs.detach()), fake_t)) / 2
        d_loss.backward()
        self.opt_d.step()


# -- one case ---------------------------------------------------------------------------------------

def _timed(fn, k: int) -> float:
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k


def run_case(name: str, rounds: int, sets: list[str], work: Path, progress=print) -> dict:
    from ganzoo.engine.trainer import Callback

    arch, kind, size, batch, k, settings = CASES[name]
    trainer = _engine_trainer(arch, kind, size, batch, settings, sets, work / name)
    bare = Bare(trainer)
    others = {"bare": bare.step}
    if arch == "dcgan":
        info = trainer.p.dataset.info
        others["pytorch-gan"] = PyTorchGANStyle(info.channels, info.height, batch).step
    times: dict[str, list[float]] = {"engine": [], **{o: [] for o in others}}

    class Interleave(Callback):
        def __init__(self):
            self.t0 = 0.0

        def on_train_start(self, tr):
            self.t0 = time.perf_counter()

        def on_step_end(self, tr, step, logs):
            if step % k:
                return
            engine = (time.perf_counter() - self.t0) / k
            r = step // k - 1  # round 0 (first steps, the step-0 sample grid) is a warm-up
            if r >= 1:
                times["engine"].append(engine)
            order = list(others.items())
            for loop, fn in order[r % len(order):] + order[:r % len(order)]:
                t = _timed(fn, k)
                if r >= 1:
                    times[loop].append(t)
            if r >= 1:
                progress(f"  {name} round {r}/{rounds}: " + ", ".join(f"{n} {v[-1] * 1e3:.1f} ms" for n, v in times.items()))
            self.t0 = time.perf_counter()

    trainer.callbacks.append(Interleave())
    trainer.cfg["steps"] = (rounds + 1) * k + 1  # the last step (final checkpoint, evaluation) is not timed
    for loop in others.values():  # warm both other loops up once (first-call allocations)
        loop()
    t0 = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - t0
    # what the engine also does in a real run, at the run's default intervals: ~10 grids, ~4 checkpoints
    default_steps = int(trainer.p.spec.defaults.get("steps", 2000))
    t = time.perf_counter()
    trainer.write_samples(10**6)
    grid_s = time.perf_counter() - t
    t = time.perf_counter()
    trainer.checkpoint(10**6)
    ckpt_s = time.perf_counter() - t
    amortised = {"sample_grid": round(grid_s * 1e3 / max(1, default_steps // 10), 3),
                 "checkpoint": round(ckpt_s * 1e3 / max(1, default_steps // 4), 3)}
    return {"case": name, "arch": arch, "data": kind, "image_size": size, "batch_size": batch, "steps_per_round": k,
            "settings": {**settings, **dict(s.split("=", 1) for s in sets)}, "rounds_s": times,
            "sample_grid_ms": round(grid_s * 1e3, 1), "checkpoint_ms": round(ckpt_s * 1e3, 1),
            "default_steps": default_steps, "amortised_ms": amortised, "wall_s": round(wall, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per case (plus one warm-up round)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared machine OpenMP threads that wait on each other dominate)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a 'ganzoo train --set' assignment for the engine, e.g. compile=true")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--from-json", default="", help="print the table of an earlier results JSON")
    args = ap.parse_args(argv)
    if args.from_json:
        print(table(json.loads(Path(args.from_json).read_text())["summary"]))
        return 0
    import torch

    from ganzoo.bench import machine

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    names = [c for c in args.cases.split(",") if c]
    bad = [c for c in names if c not in CASES]
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; choose from {', '.join(CASES)}")
    started, before = time.time(), machine()
    records = []
    with tempfile.TemporaryDirectory(prefix="ganzoo-throughput-") as tmp:
        for name in names:
            print(f"== {name}", flush=True)
            records.append(run_case(name, args.rounds, args.sets, Path(tmp), progress=lambda m: print(m, flush=True)))
    summary = summarise(records)
    result = {"benchmark": "train_throughput", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {**before, "loadavg_before": before.get("loadavg"), "loadavg_after": machine().get("loadavg")},
              "command": "python benchmarks/train_throughput.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
              "threads": threads, "rounds": args.rounds, "goal": f"engine / bare <= {GOAL} (median of within-round ratios)",
              "seconds": round(time.time() - started, 1), "summary": summary, "records": records}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("\n" + table(summary))
    print(f"\nresults: {out}" + (f"; MISSED: {', '.join(summary['missed'])}" if summary["missed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
