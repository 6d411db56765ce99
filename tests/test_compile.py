"""``--set compile=true`` (ganzoo.engine.accel) on the CPU: the networks are compiled in place for
training, the critic left eager when the penalty differentiates it twice, and a compiled run trains,
checkpoints with the plain weight names and reopens uncompiled for export.

These tests compile with torch.compile's ``eager`` backend: dynamo captures the real step's graphs as
with the default ``inductor`` backend, but skips C++ code generation, which takes ~100 s for even a
tiny MLP on this 2-core CPU (``ganzoo train vanilla ... --set compile=true``: 100.8 s for 5 steps).
"""

from __future__ import annotations

import pytest
import torch

from ganzoo.engine.build import open_run
from ganzoo.engine.checkpoint import load_checkpoint
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Trainer
from ganzoo.registry import get_registry


@pytest.fixture
def eager_backend(monkeypatch):
    compile_ = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **kw: compile_(self, *a, **{**kw, "backend": "eager"}))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _compiled(net) -> bool:
    return getattr(net, "_compiled_call_impl", None) is not None


def _trainer(tmp_path, **run):
    reg = get_registry()
    spec = reg.get("architecture", "vanilla")
    base = {"data": "ring8", "steps": 3, "batch_size": 16, "device": "cpu", "log_every": 1, "eval_samples": 50,
            "sample_every": 1000, "hidden": 16, "layers": 2, "compile": True}
    r, h = flatten_user(spec, {}, {**base, **run})
    return Trainer(resolve(reg, spec, r, h), RunDir(tmp_path / "run"), quiet=True)


def test_compile_trains_checkpoints_plain_names_and_reopens(tmp_path, eager_backend):
    tr = _trainer(tmp_path, penalty="none")
    assert _compiled(tr.p.nets["G"]) and _compiled(tr.p.nets["D"])
    tr.fit()
    state = load_checkpoint(tr.rd.checkpoint_path)
    keys = [k for net in state["nets"].values() for k in net]
    assert keys and not [k for k in keys if "_orig_mod" in k]
    parts, st = open_run(str(tr.rd.path))
    assert st["step"] == 3 and not any(_compiled(n) for n in parts.nets.values())


def test_a_critic_with_a_double_backward_penalty_stays_eager(tmp_path, eager_backend):
    tr = _trainer(tmp_path, penalty="r1")
    assert _compiled(tr.p.nets["G"]) and not _compiled(tr.p.nets["D"])


def test_compile_is_off_by_default(tmp_path):
    tr = _trainer(tmp_path, compile=False)
    assert not any(_compiled(n) for n in tr.p.nets.values())
