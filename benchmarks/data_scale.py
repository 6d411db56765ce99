"""Real image sets at real size: the decoded data cache, measured.

Generates ``--count`` (default 20,000) JPEGs of 128x128 in a temporary folder (deleted afterwards;
never committed), then reports:

1. first-run decoding (files -> the 64x64 cache) in images/s with 1 thread and with every core;
2. second-run start-to-first-step time of ``dcgan`` at 64x64 on the cached folder against the same
   run on the embedded ``digits`` set (goal: at most 2 s more), each a fresh process, interleaved
   rounds, medians;
3. memory of one training process and of two at once on the same cache (goal: the second adds
   under 10% of the cache size for the data), read from /proc/PID/smaps: for the cache file's
   mapping, the pages each process holds privately (its own copies) against those it shares; for
   the whole process RSS, PSS (shared pages split between the processes) and USS (private pages);
   and the same two processes with ``data_cache=false`` (each holds its own copy) for contrast;
4. loader-only images/s at 64x64 from the warm cache (prefetching BatchLoader, batch 64, uint8 ->
   float) against DCGAN 64x64 training images/s (goal: at least 20x), interleaved rounds, medians.

    python benchmarks/data_scale.py                 # the full 20,000 images
    python benchmarks/data_scale.py --count 2000    # a quick look

Prints a table and writes ``benchmarks/results/data_scale.json`` with the machine (CPU, cores, load
averages before and after: the machine may be shared, which slows every figure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from _common import RESULTS, finish, machine, trainer_for  # same folder: run as a script
from ganzoo.bench.worker import cpu_name

SIZE = 64
HERE = Path(__file__).resolve()


def make_jpegs(folder: Path, count: int, side: int = 128) -> None:
    """Smooth synthetic pictures (gradients, a disc, a bar): JPEG sizes like photos', not noise's."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side

    def one(i: int) -> None:
        rng = np.random.default_rng(i)
        a, b, c = rng.uniform(0, 255, 3), rng.uniform(-128, 128, 3), rng.uniform(-128, 128, 3)
        arr = np.clip(a + b * xx[..., None] + c * yy[..., None], 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        d = ImageDraw.Draw(img)
        x, y, r = rng.integers(10, side - 10, 2).tolist() + [int(rng.integers(5, 30))]
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.integers(0, 256, 3).tolist()))
        d.rectangle((0, int(y / 2), side, int(y / 2) + 6), fill=tuple(rng.integers(0, 256, 3).tolist()))
        img.save(folder / f"{i:06d}.jpg", quality=90)

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(one, range(count), chunksize=256))


def decode_once(data: Path, cache: Path, workers: int) -> dict:
    """First-run decode of the folder into an empty cache, in a fresh process."""
    code = (
        "import sys, time\n"
        "from ganzoo.data.resolve import load_dataset\n"
        "t0 = time.perf_counter()  # imports done: time the listing, decoding and cache writing only\n"
        f"ds = load_dataset('folder:{data}', image_size={SIZE}, workers={workers}, progress=False)\n"
        "print(len(ds), time.perf_counter() - t0)\n"
    )
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "GANZOO_CACHE": str(cache)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    n, inside = out.split()
    return {"images": int(n), "seconds": round(float(inside), 2), "process_seconds": round(time.perf_counter() - t0, 2),
            "images_per_s": round(int(n) / float(inside), 1)}


# -- worker processes ------------------------------------------------------------------------------


def worker_first_step(data: str, out: str) -> None:
    """Train dcgan at 64x64 and print the wall-clock time of the end of step 1, then stop."""
    from ganzoo.engine.trainer import Callback

    class Stop(Callback):
        def on_step_end(self, trainer, step, logs):
            print(f"FIRST_STEP {time.time()}", flush=True)
            os._exit(0)

    t = trainer_for("dcgan", 0, 2, [f"data={data}", f"image_size={SIZE}", "sample_every=100"], Path(out))
    t.callbacks.append(Stop())
    t.fit()


def worker_memory(data: str, out: str, cache: bool) -> None:
    """Build a dcgan run on ``data``, read every image once through the loader (as an epoch does),
    train a few steps, print READY and wait for stdin to close."""
    import torch

    t = trainer_for("dcgan", 0, 1000, [f"data={data}", f"image_size={SIZE}", f"data_cache={str(cache).lower()}"],
                    Path(out))
    ds = t.p.train_data
    for i in range(0, len(ds), 256):
        t.p.train_data.get(torch.arange(i, min(len(ds), i + 256)))
    for step in range(1, 4):
        t.train_step(step)
    print("READY", flush=True)
    sys.stdin.read()


def worker_rates(data: str, out: str, rounds: int) -> None:
    """Interleaved rounds: loader-only batches/s, then dcgan training steps/s, both at batch 64."""
    import torch

    from ganzoo.data.loader import BatchLoader
    from ganzoo.engine.trainer import Sampler

    t = trainer_for("dcgan", 0, 1000, [f"data={data}", f"image_size={SIZE}", "batch_size=64"], Path(out))
    loader = BatchLoader(t.p.train_data, Sampler(len(t.p.train_data), 9), None, 64, torch.device("cpu"))
    t.train_step(1)  # warm-up
    for _ in range(20):
        loader.next()
    res = []
    for r in range(rounds):
        t0 = time.perf_counter()
        nb = 0
        while time.perf_counter() - t0 < 2.0:
            loader.next()
            nb += 1
        load_ips = nb * 64 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        ns = 0
        while ns < 3 or time.perf_counter() - t0 < 4.0:
            t.train_step(2 + r * 100 + ns)
            ns += 1
        train_ips = ns * 64 * int(t.cfg["n_critic"]) / (time.perf_counter() - t0)
        res.append({"loader_images_per_s": round(load_ips, 1), "train_images_per_s": round(train_ips, 2),
                    "ratio": round(load_ips / train_ips, 1)})
    print("RATES " + json.dumps({"rounds": res, "torch_threads": torch.get_num_threads()}), flush=True)


# -- measurements ------------------------------------------------------------------------------------


def first_step_time(data: str, tmp: Path, env: dict) -> float:
    out = tmp / f"run-{time.monotonic_ns()}"
    t0 = time.time()
    p = subprocess.run([sys.executable, str(HERE), "--worker", "first-step", "--data", data, "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=600)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("FIRST_STEP")]
    if not line:
        raise SystemExit(f"first-step worker failed: {p.stderr[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return float(line[0].split()[1]) - t0


def smaps(pid: int, cache_file: str | None) -> dict:
    """Process RSS / PSS / USS and, for the cache file's mappings, resident, shared and private pages (MB)."""
    tot = {"rss": 0, "pss": 0, "uss": 0}
    mapping = {"rss": 0, "shared": 0, "private": 0}
    current = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        if not parts[0].endswith(":") or len(parts) > 3 and "-" in parts[0]:
            current = parts[-1] if len(parts) >= 6 else ""
            continue
        key, kb = parts[0][:-1], int(parts[1]) if parts[1].isdigit() else 0
        mine = cache_file is not None and current == cache_file
        if key == "Rss":
            tot["rss"] += kb
            mapping["rss"] += kb if mine else 0
        elif key == "Pss":
            tot["pss"] += kb
        elif key in ("Private_Clean", "Private_Dirty"):
            tot["uss"] += kb
            mapping["private"] += kb if mine else 0
        elif key in ("Shared_Clean", "Shared_Dirty") and mine:
            mapping["shared"] += kb
    mb = lambda d: {k: round(v / 1024, 1) for k, v in d.items()}  # noqa: E731
    return {**mb(tot), "cache_mapping": mb(mapping)}


def memory(data: str, tmp: Path, env: dict, n: int, cache: bool, cache_file: str | None) -> list[dict]:
    procs = []
    try:
        for i in range(n):
            p = subprocess.Popen([sys.executable, str(HERE), "--worker", "memory", "--data", data,
                                  "--out", str(tmp / f"mem{i}"), *([] if cache else ["--no-cache"])],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            if p.stdout.readline().strip() != "READY":  # one after the other: the second finds the pages in memory
                raise SystemExit("memory worker failed")
        return [smaps(p.pid, cache_file) for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20_000, help="JPEGs to generate (default 20,000)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for the timings (default 5)")
    ap.add_argument("--keep", type=Path, help="generate into (or reuse) this folder and keep it")
    ap.add_argument("--worker", choices=["first-step", "memory", "rates"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "first-step":
        worker_first_step(a.data, a.out)
        return 0
    if a.worker == "memory":
        worker_memory(a.data, a.out, not a.no_cache)
        return 0
    if a.worker == "rates":
        worker_rates(a.data, a.out, a.rounds)
        return 0

    load_before = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="ganzoo-data-scale-"))
    try:
        images = a.keep or tmp / "images"
        t0 = time.perf_counter()
        if not (images.is_dir() and len(list(images.glob("*.jpg"))) == a.count):
            shutil.rmtree(images, ignore_errors=True)
            make_jpegs(images, a.count)
        gen_s = time.perf_counter() - t0
        print(f"{a.count:,} JPEGs of 128x128 in {images} ({gen_s:.0f} s)", flush=True)
        data = f"folder:{images}"
        cores = len(os.sched_getaffinity(0))

        decode = {"1": [], str(cores): []}
        for _ in range(2):  # interleaved: 1 thread, all cores, 1 thread, all cores
            for w in (1, cores):
                decode[str(w)].append(decode_once(images, tmp / "cold-cache", w))
                print(f"decode with {w} thread(s): {decode[str(w)][-1]}", flush=True)

        cache = tmp / "cache"
        env = {**os.environ, "GANZOO_CACHE": str(cache)}
        first_step_time(data, tmp, env)  # fills the cache (the first run)
        cache_files = sorted(cache.glob("*.npy"))
        cache_file = str(cache_files[0]) if cache_files else None
        cache_mb = round(cache_files[0].stat().st_size / 2**20, 1) if cache_files else 0
        starts = {"cached_folder": [], "embedded_digits": []}
        for _ in range(a.rounds):
            starts["cached_folder"].append(round(first_step_time(data, tmp, env), 2))
            starts["embedded_digits"].append(round(first_step_time("digits", tmp, env), 2))
            print(f"start to first step: {starts['cached_folder'][-1]} s (cached folder), "
                  f"{starts['embedded_digits'][-1]} s (digits)", flush=True)
        deltas = [c - e for c, e in zip(starts["cached_folder"], starts["embedded_digits"])]

        mem = {
            "one_cached": memory(data, tmp, env, 1, True, cache_file),
            "two_cached": memory(data, tmp, env, 2, True, cache_file),
            "two_in_memory": memory(data, tmp, env, 2, False, None),
        }
        second = mem["two_cached"][1]["cache_mapping"]
        second_added = second["private"]
        print(f"memory: {json.dumps(mem)}", flush=True)

        p = subprocess.run([sys.executable, str(HERE), "--worker", "rates", "--data", data, "--out", str(tmp / "rates"),
                            "--rounds", str(a.rounds)], env=env, capture_output=True, text=True, timeout=1800)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RATES ")]
        if not line:
            raise SystemExit(f"rates worker failed: {p.stderr[-2000:]}")
        rates = json.loads(line[0][6:])
        ratio = statistics.median(r["ratio"] for r in rates["rounds"])
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    d1, dn = med([d["images_per_s"] for d in decode["1"]]), med([d["images_per_s"] for d in decode[str(cores)]])
    goals = {
        "start_delta_s": (med(deltas), "<=", 2.0),
        "second_process_data_mb_vs_10pct_cache": (second_added, "<=", round(0.1 * cache_mb, 1)),
        "loader_to_training_ratio": (ratio, ">=", 20.0),
    }
    missed = [k for k, (v, op, bar) in goals.items() if not (v <= bar if op == "<=" else v >= bar)]
    rows = [
        ("first-run decode, 1 thread", f"{d1:,.0f} images/s", ""),
        (f"first-run decode, {cores} threads", f"{dn:,.0f} images/s", f"{dn / d1:.2f}x"),
        ("start to first step, cached folder", f"{med(starts['cached_folder'])} s", ""),
        ("start to first step, embedded digits", f"{med(starts['embedded_digits'])} s", ""),
        ("  difference (median of rounds)", f"{med(deltas)} s", "goal <= 2 s"),
        ("cache file", f"{cache_mb} MB", ""),
        ("one process: RSS / PSS / USS", "{rss} / {pss} / {uss} MB".format(**mem["one_cached"][0]), ""),
        ("two processes, 2nd: RSS / PSS / USS", "{rss} / {pss} / {uss} MB".format(**mem["two_cached"][1]), ""),
        ("  2nd's cache mapping: shared / private", f"{second['shared']} / {second['private']} MB",
         f"goal private <= {0.1 * cache_mb:.1f} MB"),
        ("two in memory (data_cache=false), 2nd USS", f"{mem['two_in_memory'][1]['uss']} MB", ""),
        ("loader only, 64x64, warm cache", f"{med([r['loader_images_per_s'] for r in rates['rounds']]):,.0f} images/s", ""),
        ("dcgan 64x64 training", f"{med([r['train_images_per_s'] for r in rates['rounds']]):,.1f} images/s", ""),
        ("  loader / training (median of rounds)", f"{ratio}x", "goal >= 20x"),
    ]
    print()
    for name, value, note in rows:
        print(f"{name:<44} {value:>22}  {note}")
    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"\nmachine: {cpu_name()}, {cores} cores, load average before {load_before}, after {load_after}")
    result = {
        "benchmark": "data_scale", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(0, cpu=cpu_name(), cores=cores, loadavg_before=load_before, loadavg_after=load_after),
        "count": a.count, "image_side": 128, "train_size": SIZE, "generate_seconds": round(gen_s, 1),
        "decode": decode, "start_to_first_step_s": starts, "start_delta_s": deltas,
        "cache_mb": cache_mb, "memory_mb": mem,
        "memory_note": "rss/pss/uss of each whole process from /proc/PID/smaps (uss = Private_Clean + Private_Dirty; "
                       "pss splits shared pages between the processes); cache_mapping = the pages of the cache "
                       "file's mapping, shared with the other process or private (own copies). The goal counts the "
                       "second process's private pages of the data.",
        "rates": rates, "goals": {k: {"value": v, "op": op, "bar": bar} for k, (v, op, bar) in goals.items()},
        "missed": missed,
    }
    return finish(result, RESULTS / f"data_scale{'' if a.count == 20_000 else f'_{a.count}'}.json", missed)


if __name__ == "__main__":
    sys.exit(main())
