"""Dynamic-size export of CycleGAN's generator: what it costs, and how much memory translating takes.

1. Speed: the onnx_zoo CycleGAN generator (128 px, ngf 32, 6 blocks, 2 downsamplings; random
   weights) exported at a fixed 128x128 and with symbolic height and width, both run by the
   runtime's CPU graph (ganzoo.deploy.cpu_graph; the dynamic one reads the interleave's sizes at run
   time) and, for reference, the dynamic export's plain graph. Batch 1 at 128x128, interleaved rounds,
   one intra-op thread, wall and CPU time (the latter far less disturbed by a shared machine's
   load); the ratios are medians of the within-round ratios.
2. Memory: the paper's generator (ngf 64, 9 blocks) exported with dynamic size, one image of S x S
   translated in a fresh process per size; peak RSS minus the RSS after the session was created, in
   bytes per input pixel and per float of the network's largest activation (metadata
   ``activation_floats``). ``ganzoo translate`` sizes its memory bound with this figure, with a
   margin (ganzoo.deploy.translate.BYTES_PER_ACTIVATION_FLOAT).

    python benchmarks/dynamic_size.py            # ~3-6 min on 2 shared cores
    python benchmarks/dynamic_size.py --quick    # validates the script
    python benchmarks/dynamic_size.py --no-memory  # the speed part only (keeps the last memory results)

Writes benchmarks/results/dynamic_size.json (with the machine, its load and CPU name).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "dynamic_size.json"

MEMORY_CHILD = r"""
import json, sys
import numpy as np
from ganzoo.deploy.runtime import GanzooModel

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ":"))

path, size = sys.argv[1], int(sys.argv[2])
m = GanzooModel(path, provider="cpu")
m.run(image=np.zeros((1, 3, 16, 16), np.float32))  # the session's own allocations, at a tiny size
x = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the RSS now
m.run(image=x)
print(json.dumps({"size": size, "rss_before_kib": before, "peak_kib": status("VmHWM"),
                  "activation_floats": m.info.activation_floats, "graph": m.graph}))
"""


def export(net, size: int, dynamic: bool, path: Path):
    from ganzoo.deploy.contract import ModelInfo
    from ganzoo.deploy.export import activation_floats, export_network

    info = ModelInfo(architecture="cyclegan", network="G_AB", inputs=("image",), output="image_out", output_kind="image",
                     channels=3, height=size, width=size, size_multiple=net.size_multiple if dynamic else 0,
                     min_size=net.min_size if dynamic else 0)
    from dataclasses import replace

    info = replace(info, activation_floats=activation_floats(net, info))
    return export_network(net, info, path, verify_batches=(1,))


def speed(tmp: Path, rounds: int, reps: int) -> dict:
    import torch

    from ganzoo.deploy.runtime import GanzooModel
    from ganzoo_plugins.cyclegan_nets import ResnetGenerator

    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, 32, 6, 2).eval()
    export(net, 128, False, tmp / "fixed.onnx")
    export(net, 128, True, tmp / "dynamic.onnx")
    # one intra-op thread: the CPU time of a call is then its compute alone, which a shared machine's
    # load disturbs far less than the wall time (both are recorded)
    models = {
        "fixed 128x128, cpu graph": GanzooModel(tmp / "fixed.onnx", provider="cpu", threads=1),
        "dynamic HxW, cpu graph": GanzooModel(tmp / "dynamic.onnx", provider="cpu", threads=1),
        "dynamic HxW, plain graph": GanzooModel(tmp / "dynamic.onnx", provider="cpu", graph="plain", threads=1),
    }
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    outs = {k: m.run(image=x) for k, m in models.items()}
    agree = max(float(np.abs(o - outs["fixed 128x128, cpu graph"]).max()) for o in outs.values())
    wall: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for name, m in models.items():  # interleaved: every variant once per round
            t, c = time.perf_counter(), time.process_time()
            for _ in range(reps):
                m.forward({"image": x})
            wall[name].append((time.perf_counter() - t) / reps * 1e3)
            cpu[name].append((time.process_time() - c) / reps * 1e3)

    def ratio(times: dict, name: str) -> float:
        return statistics.median(d / f for d, f in zip(times[name], times["fixed 128x128, cpu graph"]))

    return {
        "threads": 1,
        "wall_ms_median": {k: statistics.median(v) for k, v in wall.items()},
        "cpu_ms_median": {k: statistics.median(v) for k, v in cpu.items()},
        "ratio_dynamic_over_fixed": {"wall": ratio(wall, "dynamic HxW, cpu graph"), "cpu": ratio(cpu, "dynamic HxW, cpu graph")},
        "ratio_plain_over_fixed": {"wall": ratio(wall, "dynamic HxW, plain graph"), "cpu": ratio(cpu, "dynamic HxW, plain graph")},
        "max_abs_difference": agree, "rounds": rounds, "reps": reps, "graphs": {k: m.graph for k, m in models.items()},
    }


def memory(tmp: Path, sizes: list[int]) -> dict:
    import torch

    from ganzoo_plugins.cyclegan_nets import ResnetGenerator

    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, 64, 9, 2).eval()
    res = export(net, 64, True, tmp / "paper.onnx")
    rows = []
    for s in sizes:
        p = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(res.path), str(s)], capture_output=True, text=True,
                           timeout=600, env={**os.environ, "OMP_NUM_THREADS": "2"})
        if p.returncode:
            raise SystemExit(p.stderr[-2000:])
        r = json.loads(p.stdout.strip().splitlines()[-1])
        grown = (r["peak_kib"] - max(r["rss_before_kib"], 0)) * 1024
        r["bytes_per_pixel"] = grown / (s * s)
        r["bytes_per_pixel_per_activation_float"] = r["bytes_per_pixel"] / r["activation_floats"]
        rows.append(r)
        print(f"  {s}x{s}: peak grew {grown / 2**20:.0f} MiB = {r['bytes_per_pixel']:.0f} B/px = "
              f"{r['bytes_per_pixel_per_activation_float']:.1f} B per activation float per px", flush=True)
    return {"network": "ResnetGenerator ngf 64, 9 blocks, 2 downsamplings (the paper's)", "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds and small sizes: validates the script")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory part (keeps its last results)")
    args = ap.parse_args()
    from ganzoo.bench.worker import cpu_name

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print("speed: CycleGAN generator at 128x128, batch 1, ONNX Runtime CPU", flush=True)
        sp = speed(tmp, rounds=3 if args.quick else 15, reps=2 if args.quick else 10)
        print(f"  {'':28s} {'wall ms':>9s} {'cpu ms':>9s}")
        for k in sp["wall_ms_median"]:
            print(f"  {k:28s} {sp['wall_ms_median'][k]:9.2f} {sp['cpu_ms_median'][k]:9.2f}")
        r = sp["ratio_dynamic_over_fixed"]
        print(f"  dynamic / fixed (cpu graph): {r['wall']:.3f} wall, {r['cpu']:.3f} cpu (medians of within-round ratios); "
              f"outputs agree to {sp['max_abs_difference']:.1e}")
        if args.no_memory and RESULTS.exists():
            mem = json.loads(RESULTS.read_text())["memory"]
        else:
            print("memory: paper-size generator, one S x S image", flush=True)
            mem = memory(tmp, [128, 256] if args.quick else [256, 512, 1024])
    result = {"speed": sp, "memory": mem, "quick": args.quick,
              "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
