"""Training time per step at 1 thread, 2 threads and ganzoo's automatic choice, with the machine as
it is and with one core kept busy by a spinning process this script starts.

Jobs: the README's ``ganzoo train vanilla`` (MLP on ring8, batch 256), DCGAN at its reference size
(64x64 RGB, batch 64) and CycleGAN at its (128x128 RGB, at the paper's batch 1) -- random smooth RGB images in a
temporary folder, as benchmarks/onnx_zoo.py uses. Each job's trainer is built once; then, round
after round, both conditions and the three settings take turns (the order rotating), each timing a
few real training steps, so a machine whose speed drifts slows every setting alike. "auto" is what
ganzoo.engine.threads.choose picks at that moment (its reason is recorded). Figures are the median
per-step time over rounds; ratios are the median of within-round ratios.

    python benchmarks/threads.py                      # all three jobs (~10 min on 2 busy cores)
    python benchmarks/threads.py --jobs vanilla --rounds 5
    python benchmarks/threads.py --jobs dcgan28 --json benchmarks/results/threads_dcgan28.json  # dcgan at 28 px

Writes benchmarks/results/threads.json with the CPU, the core count, the load average and the busy
cores sampled before every timing: the machine may be shared, and the figures say how busy it was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS  # same folder: run as a script
from onnx_zoo import data_arg

JOBS = {  # name -> (architecture, reference data kind, image size, batch size (None: the default), label)
    "vanilla": ("vanilla", None, 0, None, "README: ganzoo train vanilla (ring8, batch 256)"),
    "dcgan": ("dcgan", "rgb", 64, None, "DCGAN 64x64 RGB, batch 64"),
    # MNIST's size and channels (the 8x8 digits served at 28 px cost what MNIST IDX files do)
    "dcgan28": ("dcgan", "digits", 28, None, "DCGAN 28x28 gray (MNIST size), batch 64"),
    # batch 1, the CycleGAN paper's: at ganzoo's default of 16 one step at 128 px takes minutes on 2 shared cores
    "cyclegan": ("cyclegan", "unpaired", 128, 1, "CycleGAN 128x128 RGB, batch 1 (the paper's)"),
}


def trainer(arch: str, kind: str | None, size: int, batch: int | None, tmp: Path):
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Trainer
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", arch)
    cli = {"device": "cpu", "seed": 0, **(data_arg(kind, size, tmp) if kind else {}), **({"batch_size": batch} if batch else {})}
    run, hps = flatten_user(spec, {}, cli)
    return Trainer(resolve(reg, spec, run, hps), RunDir(str(tmp / arch)), quiet=True)


def time_steps(tr, n_threads: int, steps: int, state: dict) -> float:
    """Seconds per training step at ``n_threads``: the median of ``steps`` real training steps."""
    import torch

    torch.set_num_threads(n_threads)
    times = []
    for _ in range(steps):
        state["step"] += 1
        t0 = time.perf_counter()
        tr.train_step(state["step"])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="vanilla,dcgan,cyclegan")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="aim of one timing at 1 thread (at least 1 step)")
    ap.add_argument("--budget", type=float, default=540, help="seconds after which no new round starts (each job gets one)")
    ap.add_argument("--json", default=str(RESULTS / "threads.json"))
    args = ap.parse_args()
    os.environ.pop("OMP_NUM_THREADS", None)
    import torch

    from ganzoo.bench.worker import cpu_name
    from ganzoo.engine import threads

    cpus = threads.usable_cores()
    out = {"benchmark": "threads", "machine": {
        "cpu": cpu_name(), "usable_cores": len(cpus), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "note": "'busy_cores' is the CPU time of other processes sampled from /proc/stat just before each "
                "timing: how busy the machine was apart from this script (and its spinner, in 'one core busy')"},
        "jobs": {}}
    t_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="threads-bench-"))
    spinner = None
    try:
        for name in [j.strip() for j in args.jobs.split(",") if j.strip()]:
            arch, kind, size, batch, label = JOBS[name]
            tr = trainer(arch, kind, size, batch, tmp)
            state = {"step": 0}
            time_steps(tr, 1, 1, state)  # warm-up
            probe = time_steps(tr, 1, 1, state)
            steps = max(1, min(30, round(args.seconds / max(probe, 1e-3))))
            auto_gmac = threads.step_gmac(tr.p, int(tr.cfg["batch_size"]), int(tr.cfg["n_critic"]))
            rows = []
            print(f"{label}: {steps} steps per timing, {auto_gmac:.3g} GMAC forward per step", flush=True)
            for r in range(args.rounds):
                if r and time.perf_counter() - t_start > args.budget * (list(JOBS).index(name) + 1) / len(JOBS):
                    print(f"  (time budget: {name} stops after {r} round(s))", flush=True)
                    break
                for cond in (("as is", "one core busy") if r % 2 == 0 else ("one core busy", "as is")):
                    if cond == "one core busy":
                        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        time.sleep(0.5)
                    busy, _ = threads.busy_cores(cpus)
                    auto_n, auto_why = threads.decide(float(len(cpus)), busy, auto_gmac)  # as choose() decides
                    settings = [("1", 1), ("2", 2), ("auto", auto_n)]
                    settings = settings[r % 3:] + settings[: r % 3]
                    for setting, n in settings:
                        s = time_steps(tr, n, steps, state)
                        rows.append({"round": r, "condition": cond, "setting": setting, "threads": n, "s_per_step": round(s, 5),
                                     "busy_cores": round(busy, 2), **({"auto_why": auto_why} if setting == "auto" else {})})
                        print(f"  round {r + 1} {cond:<13} {setting:<4} ({n} thr) {s * 1e3:9.1f} ms/step  busy {busy:.2f}",
                              flush=True)
                    if spinner is not None:
                        spinner.kill()
                        spinner.wait()
                        spinner = None
            summary = {}
            for cond in ("as is", "one core busy"):
                med = {st: statistics.median(x["s_per_step"] for x in rows if x["condition"] == cond and x["setting"] == st)
                       for st in ("1", "2", "auto")}
                ratio = {st: statistics.median(  # within-round ratios
                    [a["s_per_step"] / b["s_per_step"] for a in rows for b in rows if a["round"] == b["round"]
                     and a["condition"] == b["condition"] == cond and a["setting"] == st and b["setting"] == "1"])
                    for st in ("2", "auto")}
                summary[cond] = {"median_s_per_step": {k: round(v, 5) for k, v in med.items()},
                                 "time_vs_1_thread": {k: round(v, 3) for k, v in ratio.items()},
                                 "auto_threads": sorted({x["threads"] for x in rows if x["condition"] == cond and x["setting"] == "auto"}),
                                 "busy_cores_median": round(statistics.median(x["busy_cores"] for x in rows if x["condition"] == cond), 2)}
                if name == "vanilla":
                    summary[cond]["readme_job_s"] = {k: round(v * int(tr.cfg["steps"]), 1) for k, v in med.items()}
            out["jobs"][name] = job = {"label": label, "steps_per_timing": steps, "gmac_forward_per_step": round(auto_gmac, 3),
                                 "batch_size": tr.cfg["batch_size"], "image_size": tr.cfg.get("image_size"),
                                 "train_steps_of_job": tr.cfg["steps"], "summary": summary, "timings": rows}
            save(out, args.json, t_start)  # each job as soon as it is measured: a long run keeps what it has
    finally:
        if spinner is not None:
            spinner.kill()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    save(out, args.json, t_start)

    print(f"\n{'job':<9} {'condition':<14} {'1 thread':>10} {'2 threads':>10} {'auto':>10} {'auto thr':>8} "
          f"{'2 vs 1':>7} {'auto vs 1':>9} {'busy':>5}")
    for name, job in out["jobs"].items():
        for cond, s in job["summary"].items():
            m = s["median_s_per_step"]
            print(f"{name:<9} {cond:<14} {m['1'] * 1e3:>8.1f}ms {m['2'] * 1e3:>8.1f}ms {m['auto'] * 1e3:>8.1f}ms "
                  f"{','.join(map(str, s['auto_threads'])):>8} {s['time_vs_1_thread']['2']:>6.2f}x "
                  f"{s['time_vs_1_thread']['auto']:>8.2f}x {s['busy_cores_median']:>5}")
        if "readme_job_s" in job["summary"]["as is"]:
            for cond, s in job["summary"].items():
                print(f"  README job ({job['train_steps_of_job']} steps), {cond}: "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in s["readme_job_s"].items()))
    print(f"\nwrote {args.json} ({out['seconds']:.0f} s)")
    return 0


def save(out: dict, path: str, t_start: float) -> None:
    out["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
