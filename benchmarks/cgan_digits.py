"""Conditional GAN quality bar on the embedded ``digits`` set (served at 16 px).

Trains ``ganzoo train cgan`` with its defaults for several seeds on CPU, then scores each run with
``ganzoo eval RUN --json``. Bar, on the median over seeds:

* ``conditional_accuracy`` -- a classifier trained on the real digits recognises the requested
  class in samples drawn for every class, >= 90%.

Also reported: classes covered, the classifier IS and the Fréchet distance ratio to the real-vs-real
floor (no bar).

    python benchmarks/cgan_digits.py                       # 3 seeds, the architecture's defaults
    python benchmarks/cgan_digits.py --seeds 0 --steps 500 --keep /tmp/cg

Prints a table, writes ``benchmarks/results/cgan_digits.json`` (machine: platform, CPU count,
torch version) and exits 1 when the median misses the bar.
"""

from __future__ import annotations

import sys

from dcgan_digits import bench  # same folder: run as a script

CGAN_BARS = {"conditional_accuracy": (">=", 0.90), "classes_covered": (">=", "classes")}

if __name__ == "__main__":
    sys.exit(bench("cgan", CGAN_BARS, "cgan_digits", __doc__.splitlines()[0]))
