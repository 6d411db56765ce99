"""Image metrics as a person reads them: each figure beside its real-data floor (torch-free, so
reports can show them without importing torch)."""

from __future__ import annotations

from typing import Any

# -- human output ---------------------------------------------------------------------------------
ROWS = (  # label, key, real-data key (or a fixed floor), what the floor is
    ("classifier FD", "classifier_fd", "classifier_fd_floor", "real half vs half"),
    ("classifier IS", "classifier_is", "classifier_is_real", "real"),
    ("classes covered", "classes_covered", "classes_covered_real", "real"),
    ("class KL to uniform", "class_kl", "class_kl_real", "real"),
    ("conditional accuracy", "conditional_accuracy", "conditional_accuracy_real", "classifier on real"),
    ("label preservation", "label_preservation", "label_preservation_real", "classifier on real"),
    ("domain accuracy", "domain_accuracy", "domain_accuracy_real", "domain classifier on real"),
    ("cycle L1", "cycle_l1", 0.0, "perfect"),
    ("mapping L1 (invert)", "mapping_l1", 0.0, "perfect"),
    ("FID", "fid", "fid_floor", "real half vs half"),
    ("KID", "kid", "kid_floor", "real half vs half"),
)


def _fmt(v: Any, k: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v}/{k}" if k else str(v)
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def format_table(result: dict[str, Any]) -> str:
    """The metrics of :func:`image_metrics` as a table, each beside its real-data floor."""
    k = int(result.get("num_classes") or 0)
    lines = [f"{'metric':<22} {'value':>10}   {'real data':>10}  ({result.get('samples', '?')} images per set)"]
    for label, key, floor, what in ROWS:
        if key not in result:
            continue
        fv = floor if not isinstance(floor, str) else result.get(floor)
        kk = k if key.startswith("classes") else 0
        lines.append(f"{label:<22} {_fmt(result[key], kk):>10}   {_fmt(fv, kk):>10}  {what}")
    if "classifier_accuracy" in result:
        lines.append(f"{'classifier accuracy':<22} {_fmt(result['classifier_accuracy']):>10}   (held-out real images)")
    for note in result.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
