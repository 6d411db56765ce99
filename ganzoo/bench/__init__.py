"""``ganzoo bench``: time a generator under PyTorch eager, torch.compile and ONNX Runtime.

:mod:`ganzoo.bench.bench` runs the jobs and summarises them; :mod:`ganzoo.bench.worker` is the one
process per backend that loads and times a model.
"""

from __future__ import annotations

from .bench import BACKENDS, bench_jobs, format_table, machine, parse_batch_sizes, parse_list, plot, run_backend, run_bench, run_jobs  # noqa: F401
