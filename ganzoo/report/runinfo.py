"""What a run directory holds, read without torch: config, losses, evaluations, samples, checkpoint
step, exported ONNX files (with their parity figures and whether they are older than the checkpoint).

Used by ``report.html``, ``ganzoo report`` and ``ganzoo eval``. Reading never runs code: JSON, TOML,
file names and ONNX metadata only (a checkpoint is opened only for runs made before checkpoint
history existed, with ``weights_only=True``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.rundir import RunDir

EXPORTS = "exports.json"  # parity figures of each `ganzoo export`, by file name
EVAL = "eval.json"  # the latest `ganzoo eval` result
_SAMPLE = re.compile(r"^step_(\d+)\.png$")


@dataclass
class ExportInfo:
    """One ``*.onnx`` in a run directory. ``step`` is the training step it was exported at."""

    path: Path
    step: int | None
    checkpoint_step: int | None
    record: dict[str, Any] = field(default_factory=dict)  # from exports.json: errors, tolerance, ...
    stale: bool = False

    def staleness(self) -> str:
        """One line for a stale export ('' when it is current)."""
        if not self.stale:
            return ""
        when = f"at step {self.step}" if self.step is not None else "before the last checkpoint"
        return (f"{self.path.name} was exported {when} but the checkpoint is at step {self.checkpoint_step}; "
                f"export again with 'ganzoo export {self.path.parent}'")


@dataclass
class RunInfo:
    """Everything a report shows about one run directory."""

    rd: RunDir
    config: dict[str, Any]
    records: list[dict[str, Any]]  # loss records of metrics.jsonl (step + d_*/g_* numbers)
    evals: list[dict[str, Any]]  # end-of-run evaluations logged in metrics.jsonl
    eval_result: dict[str, Any] | None  # eval.json written by `ganzoo eval`
    samples: list[tuple[int, Path]]  # (step, png), oldest first
    checkpoint_step: int | None
    exports: list[ExportInfo]

    @property
    def name(self) -> str:
        return self.rd.path.name

    @property
    def total_steps(self) -> int:
        return int(self.config.get("steps", 0) or 0)

    @property
    def latest_step(self) -> int:
        """The newest step the run is known to have reached (logged or checkpointed)."""
        steps = [r["step"] for r in self.records] + [self.checkpoint_step or 0]
        return max(steps) if steps else 0

    def metrics(self) -> dict[str, Any]:
        """The newest evaluation: `ganzoo eval`'s when it is about the current checkpoint, else the run's own."""
        if self.eval_result and self.eval_result.get("step") == self.checkpoint_step:
            return dict(self.eval_result.get("result", {}))
        return dict(self.evals[-1]) if self.evals else {}


def read_records(rd: RunDir) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(loss records, evaluation records) of ``metrics.jsonl``; a torn last line is skipped."""
    losses, evals = [], []
    for rec in rd.read_metrics():
        if not isinstance(rec, dict) or "step" not in rec:
            continue
        if "eval" in rec:
            if isinstance(rec["eval"], dict):
                evals.append({"step": rec["step"], **rec["eval"]})
        else:
            losses.append(rec)
    return losses, evals


def sample_files(rd: RunDir) -> list[tuple[int, Path]]:
    if not rd.samples.is_dir():
        return []
    out = [(int(m.group(1)), p) for p in rd.samples.iterdir() if (m := _SAMPLE.match(p.name))]
    return sorted(out)


def checkpoint_step(rd: RunDir) -> int | None:
    """The step of ``checkpoints/last.pt``: from the newest ``step_XXXXXX.pt`` name (last.pt is that
    file); for runs without history, from the checkpoint itself."""
    from ..engine.checkpoint import LAST, step_files

    folder = rd.checkpoint_path.parent
    history = step_files(folder)
    if history:
        return history[0][0]
    last = folder / LAST
    if not last.is_file():
        return None
    try:
        from ..engine.checkpoint import load_checkpoint

        return int(load_checkpoint(last)["step"])
    except Exception:  # a damaged checkpoint: the report still shows the rest
        return None


def _onnx_step(path: Path) -> int | None:
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
        return int(meta["step"]) if "step" in meta else None
    except Exception:
        return None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def exports(rd: RunDir, ckpt_step: int | None) -> list[ExportInfo]:
    """The ``*.onnx`` files of a run directory, each with its step and whether it is stale."""
    records = read_json(rd.path / EXPORTS) or {}
    last = rd.checkpoint_path
    out = []
    for path in sorted(rd.path.glob("*.onnx")):
        rec = records.get(path.name) if isinstance(records, dict) else None
        st = path.stat()
        if not (isinstance(rec, dict) and rec.get("size_bytes") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns):
            rec = {}  # the file was replaced since it was recorded: trust only the file itself
        step = rec.get("step") if rec else _onnx_step(path)
        if step is not None and ckpt_step is not None:
            stale = step < ckpt_step
        else:
            stale = last.is_file() and st.st_mtime < last.stat().st_mtime
        out.append(ExportInfo(path, step, ckpt_step, rec, stale))
    return out


def record_export(run_dir: str | Path, path: str | Path, record: dict[str, Any]) -> None:
    """Remember an export's parity figures in ``RUN_DIR/exports.json`` (files inside the run dir)."""
    from ..engine.checkpoint import atomic_write_text

    run_dir, path = Path(run_dir), Path(path)
    try:
        if path.resolve().parent != run_dir.resolve():
            return
        st = path.stat()
    except OSError:
        return
    records = read_json(run_dir / EXPORTS)
    records = records if isinstance(records, dict) else {}
    records[path.name] = {**record, "size_bytes": st.st_size, "mtime_ns": st.st_mtime_ns, "time": round(time.time(), 3)}
    atomic_write_text(run_dir / EXPORTS, json.dumps(records, indent=1, sort_keys=True) + "\n")


def save_evaluation(rd: RunDir, result: dict[str, Any], options: dict[str, Any]) -> None:
    """Keep a `ganzoo eval` result in RUN_DIR/eval.json, add it to TensorBoard, refresh report.html.
    A run directory that cannot be written (read-only, full disk) only loses this record."""
    from ..engine.checkpoint import atomic_write_text
    from .html import refresh_report
    from .tensorboard import TensorBoard

    opts = {k: str(v) for k, v in options.items() if k != "log" and v is not None}
    record = {"step": result["step"], "time": round(time.time(), 3), "options": opts,
              "result": {k: v for k, v in result.items() if k not in ("run", "arch", "data")}}
    try:
        atomic_write_text(rd.path / EVAL, json.dumps(record, indent=1) + "\n")
        tb = TensorBoard.open(rd.path)
        if tb is not None:
            tb.scalars(int(result["step"]), {k: v for k, v in record["result"].items() if k != "step"}, "eval")
            tb.close()
    except OSError:
        return
    refresh_report(rd.path)


def read_run(path: str | Path) -> RunInfo:
    """Read a run directory; raises GanzooError (one line) when it is not one."""
    rd = RunDir(path)
    config = rd.read_config()
    losses, evals = read_records(rd)
    ckpt = checkpoint_step(rd)
    ev = read_json(rd.path / EVAL)
    return RunInfo(rd, config, losses, evals, ev if isinstance(ev, dict) else None, sample_files(rd), ckpt,
                   exports(rd, ckpt))
