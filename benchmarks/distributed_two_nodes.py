"""Two "nodes" on one machine against one node with two processes and against one process.

Trains the same run (DCGAN: BatchNorm -> SyncBatchNorm, R1 penalty; global batch 32) three ways:

* ``1 process``      - ``ganzoo train``;
* ``1 node x 2``     - ``torchrun --standalone --nproc-per-node 2 -m ganzoo train ...``;
* ``2 nodes x 1``    - two ``torchrun --nnodes 2 --node-rank 0|1 --nproc-per-node 1 --rdzv-backend c10d
  --rdzv-endpoint 127.0.0.1:PORT -m ganzoo train ...`` launchers started side by side, as two machines would;

then compares the final weights (max abs difference, every network tensor) and the logged losses, and
writes ``benchmarks/results/distributed_two_nodes.json`` with the machine named. Not run in CI.

    python benchmarks/distributed_two_nodes.py [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ARGS = ["dcgan", "--device", "cpu", "--batch-size", "32", "--image-size", "16", "--set", "ngf=16", "--set", "ndf=16",
        "--set", "log_every=5", "--seed", "3", "--quiet"]


def cpu_name() -> str:
    from ganzoo.bench.worker import cpu_name as name

    return name()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmds: list[list[str]], env: dict) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    for p in procs:
        out, err = p.communicate(timeout=1800)
        if p.returncode:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(p.args)}\n{err[-2000:]}")
    return round(time.perf_counter() - t0, 2)


def weights(run_dir: Path):
    import torch

    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)


def max_diff(a, b) -> float:
    return max((a["nets"][n][k].double() - b["nets"][n][k].double()).abs().max().item()
               for n in a["nets"] for k in a["nets"][n] if a["nets"][n][k].is_floating_point())


def losses(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip() and "eval" not in x]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    py = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    train = [*ARGS, "--steps", str(args.steps)]
    with tempfile.TemporaryDirectory(prefix="ganzoo-2nodes-") as tmp:
        tmp = Path(tmp)
        t_one = run([[py, "-m", "ganzoo", "train", *train, "--out", str(tmp / "one")]], env)
        t_node = run([[py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                       "-m", "ganzoo", "train", *train, "--out", str(tmp / "node")]], env)
        port = free_port()
        t_nodes = run([[py, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(r), "--nproc-per-node", "1",
                        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "ganzoo-bench",
                        "-m", "ganzoo", "train", *train, "--out", str(tmp / "nodes")] for r in (0, 1)], env)
        one, node, nodes = (weights(tmp / n) for n in ("one", "node", "nodes"))
        l1, l2, l3 = (losses(tmp / n) for n in ("one", "node", "nodes"))
        loss_diff = max(abs(a[k] - b[k]) for x in (l2, l3) for a, b in zip(l1, x, strict=True)
                        for k in a if k not in ("time", "step"))
        result = {
            "benchmark": "distributed_two_nodes", "run": "ganzoo train " + " ".join(train),
            "steps": args.steps, "global_batch": 32,
            "seconds": {"1 process": t_one, "1 node x 2 processes": t_node, "2 nodes x 1 process": t_nodes},
            "max_abs_weight_diff": {"1 node x 2 vs 2 nodes x 1": max_diff(node, nodes),
                                    "1 process vs 1 node x 2": max_diff(one, node),
                                    "1 process vs 2 nodes x 1": max_diff(one, nodes)},
            "max_abs_logged_loss_diff_vs_1_process": loss_diff,
            "machine": {"platform": platform.platform(), "cpu": cpu_name(), "processor": platform.processor() or platform.machine(),
                        "cpu_count": os.cpu_count(), "loadavg": list(os.getloadavg()), "python": platform.python_version(),
                        "torch": __import__("torch").__version__},
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "distributed_two_nodes.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result["max_abs_weight_diff"].items():
        print(f"{k:<28} max |dw| {v:.3g}")
    print(f"logged losses: max |diff| vs 1 process {loss_diff:.3g}")
    print("seconds:", result["seconds"])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
