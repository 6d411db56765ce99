"""Seeing a run: TensorBoard events, ``report.html`` in every run directory, ``ganzoo report``."""
