"""Data-parallel training (torch.distributed, gloo on CPU, 2 processes) against the 1-process run.

The 2-process runs start their processes the way torchrun does (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT`` on a free port) without torchrun's agent, which saves one interpreter
per run; ``--nproc 2`` goes through torchrun's launcher itself. Every process has a subprocess
timeout, and a run whose processes do not all end in time is killed and fails the test.
The 1-process references train in the test process (the CLI in-process).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import Result, invoke, only_plugins
from ganzoo.registry import ALLOW_ENV

PLUGINS = "vanilla,losses,datasets,dcgan,cyclegan"
VANILLA = ["vanilla", "--device", "cpu", "--batch-size", "32", "--set", "hidden=16", "--set", "layers=2",
           "--set", "eval_samples=200", "--set", "log_every=2", "--quiet"]
DCGAN = ["dcgan", "--device", "cpu", "--batch-size", "8", "--image-size", "8", "--set", "ngf=4", "--set", "ndf=4",
         "--set", "log_every=1", "--quiet"]
CYCLEGAN = ["cyclegan", "--device", "cpu", "--batch-size", "4", "--image-size", "8", "--set", "ngf=4", "--set", "ndf=4",
            "--set", "pool_size=3", "--set", "log_every=1", "--quiet"]
TOL = 1e-5
FAULTY = '''
"""Test plugin: the vanilla GAN whose critic step misbehaves in the process of rank FAULTY_RANK."""
import dataclasses, os
from ganzoo import GanzooError, hookimpl
from ganzoo_plugins import vanilla

class FaultyStep(vanilla.VanillaStep):
    def d_step(self, ctx, batch):
        out = super().d_step(ctx, batch)
        if os.environ.get("RANK") == os.environ["FAULTY_RANK"] and ctx.step >= 3:
            if os.environ["FAULTY_MODE"] == "nan":
                out["loss"] = out["loss"] * float("nan")
            else:
                raise GanzooError("the faulty step failed on purpose")
        return out

@hookimpl
def ganzoo_architectures():
    spec = vanilla.ganzoo_architectures()[0]
    return [dataclasses.replace(spec, name="faulty", make_step=FaultyStep)]
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(*args, world: int = 2, cwd: Path, rank_cwds: dict[int, Path] | None = None, env: dict | None = None,
           timeout: float = 120, plugins: str = PLUGINS) -> list[Result]:
    """``python -m ganzoo ARGS`` in ``world`` processes of one gloo group; their results by rank."""
    port = free_port()
    procs = []
    for r in range(world):
        e = {**os.environ, ALLOW_ENV: plugins, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(port), "WORLD_SIZE": str(world), "RANK": str(r), "LOCAL_RANK": str(r),
             "LOCAL_WORLD_SIZE": str(world), **(env or {})}
        procs.append(subprocess.Popen([sys.executable, "-m", "ganzoo", *map(str, args)], env=e, text=True,
                                      cwd=(rank_cwds or {}).get(r, cwd), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
    deadline = time.monotonic() + timeout
    out = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            out.append(Result(p.returncode, o, e))
    except subprocess.TimeoutExpired:
        for p in procs:  # PYTHONFAULTHANDLER makes SIGABRT print every thread's Python stack first
            p.send_signal(signal.SIGABRT)
        time.sleep(2)
        for p in procs:
            p.kill()
        tails = []
        for r, p in enumerate(procs):  # what each process printed before the kill, to tell where it stopped
            o, e = (out[r].out, out[r].err) if r < len(out) else p.communicate()
            tails.append(f"--- rank {r} (exit {p.returncode}) stdout:\n{o[-1500:]}\n--- rank {r} stderr:\n{e[:8000]}")
        pytest.fail(f"the {world} processes did not finish within {timeout} s (a hang)\n" + "\n".join(tails))
    return out


def ok(results: list[Result]) -> None:
    for r, res in enumerate(results):
        assert res.code == 0, (r, res.code, res.err[-3000:])
        assert "Traceback" not in res.err, (r, res.err[-3000:])


def train1(*args) -> None:
    """The 1-process reference, in this process."""
    with only_plugins(PLUGINS):
        r = invoke(*args)
    assert r.exception is None and r.code == 0, (r.code, r.err, r.exception)


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def max_diff(a: dict, b: dict, skip=lambda net, key: False) -> float:
    worst = 0.0
    assert a.keys() == b.keys()
    for net in a:
        assert a[net].keys() == b[net].keys(), net
        for k in a[net]:
            if not skip(net, k) and a[net][k].is_floating_point():
                worst = max(worst, (a[net][k] - b[net][k]).abs().max().item())
    return worst


def test_vanilla_two_processes_follow_one_and_only_rank0_writes(tmp_path):
    """2 processes x 16 rows == 1 process x 32 rows, the gradient penalty's random mixing included;
    rank 1 (started in another folder, same relative --out) writes nothing and prints nothing; rank 0
    prints the run directory once."""
    (tmp_path / "r0").mkdir()
    (tmp_path / "r1").mkdir()
    res = launch("train", *VANILLA, "--penalty", "gp", "--steps", 6, "--out", "run", cwd=tmp_path / "r0",
                 rank_cwds={1: tmp_path / "r1"})
    ok(res)
    assert res[0].out.splitlines() == ["run"] and res[1].out == ""
    assert list((tmp_path / "r1").iterdir()) == []  # rank 1 wrote nothing
    two = tmp_path / "r0" / "run"
    assert (two / "config.toml").is_file() and (two / "loss_curve.png").is_file()
    train1("train", *VANILLA, "--penalty", "gp", "--steps", 6, "--out", tmp_path / "one")
    a, b = state(tmp_path / "one"), state(two)
    assert b["step"] == 6
    assert max_diff(a["nets"], b["nets"]) <= TOL
    assert max_diff(a["ema"], b["ema"]) <= TOL
    assert max_diff({"o": a["optim"]["D"]["state"][0]}, {"o": b["optim"]["D"]["state"][0]}) <= TOL
    # logged losses are the means over both processes: the 1-process values
    def losses(run):
        import json
        return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "eval" not in x]
    for x, y in zip(losses(tmp_path / "one"), losses(two), strict=True):
        assert x["step"] == y["step"] and abs(x["d_loss"] - y["d_loss"]) < 1e-4 and abs(x["g_loss"] - y["g_loss"]) < 1e-4


def test_dcgan_syncbn_invariance_and_resume_across_world_sizes(tmp_path):
    """DCGAN (BatchNorm in G and D -> SyncBatchNorm, R1 penalty: double backward through it):
    2 processes follow 1; 2 -> 1 and 1 -> 2 resumes land where the 1-process run does; the
    checkpoint holds plain state dicts that `ganzoo sample` reopens."""
    ref = tmp_path / "ref"
    train1("train", *DCGAN, "--steps", 3, "--out", ref)
    shutil.copytree(ref, tmp_path / "one_then_two")
    ref3 = state(ref)
    res = launch("train", *DCGAN, "--steps", 3, "--out", tmp_path / "two", cwd=tmp_path)
    ok(res)
    two3 = state(tmp_path / "two")
    assert not [k for sd in two3["nets"].values() for k in sd if k.startswith("module.")]
    assert max_diff(ref3["nets"], two3["nets"]) <= TOL  # weights and BatchNorm running statistics
    # 1 -> 2 processes (resume the 1-process run with two), then 2 -> 1 (resume the 2-process run with one)
    ok(launch("train", "dcgan", "--resume", tmp_path / "one_then_two", "--steps", 6, "--quiet", cwd=tmp_path))
    train1("train", "dcgan", "--resume", ref, "--steps", 6, "--quiet")
    train1("train", "dcgan", "--resume", tmp_path / "two", "--steps", 6, "--quiet")
    ref6 = state(ref)
    for other in ("one_then_two", "two"):
        s = state(tmp_path / other)
        assert s["step"] == 6
        assert max_diff(ref6["nets"], s["nets"]) <= TOL, other
    with only_plugins(PLUGINS):
        r = invoke("sample", tmp_path / "two", "-n", 4, "--out", tmp_path / "s.png")
    assert r.code == 0 and (tmp_path / "s.png").is_file(), r.err


def _translations(run: Path) -> torch.Tensor:
    from ganzoo.engine.build import open_run

    with only_plugins(PLUGINS):
        parts, _ = open_run(str(run))
    x = parts.dataset.all_real(8, "a")
    with torch.no_grad():
        return torch.cat([parts.nets["G_AB"](x), parts.nets["G_BA"](parts.dataset.all_real(8, "b"))])


def test_cyclegan_two_processes_share_one_pool_checkpoint_and_resume(tmp_path):
    """CycleGAN's image pool gathers every process's fakes, so 2 processes keep the 1-process pool;
    trained 2 steps, checkpointed, resumed to 4 with 2 processes: the translations and the pool match
    the 1-process run that did the same. (Weights are compared through what they compute: a conv bias right before
    InstanceNorm has a zero gradient, which Adam turns from float noise into +-lr steps.)"""
    ok(launch("train", *CYCLEGAN, "--steps", 2, "--out", tmp_path / "two", cwd=tmp_path))
    assert state(tmp_path / "two")["step"] == 2
    ok(launch("train", "cyclegan", "--resume", tmp_path / "two", "--steps", 4, "--quiet", cwd=tmp_path))
    train1("train", *CYCLEGAN, "--steps", 2, "--out", tmp_path / "one")  # the same path: its lr schedule
    train1("train", "cyclegan", "--resume", tmp_path / "one", "--steps", 4, "--quiet")  # depends on --steps
    a, b = state(tmp_path / "one"), state(tmp_path / "two")
    assert b["step"] == 4
    for k in ("pool_A", "pool_B"):
        assert a["step_state"][k].shape == b["step_state"][k].shape == (3, 1, 8, 8)
        assert (a["step_state"][k] - b["step_state"][k]).abs().max() <= TOL
    assert (_translations(tmp_path / "one") - _translations(tmp_path / "two")).abs().max() <= TOL


def _error_lines(results: list[Result]) -> list[tuple[int, str]]:
    return [(r, ln) for r, res in enumerate(results) for ln in res.err.splitlines() if ln.strip()]


def test_a_bad_option_fails_every_process_with_one_line(tmp_path):
    res = launch("train", *VANILLA, "--steps", 4, "--set", "bogus_key=1", "--out", tmp_path / "x", cwd=tmp_path)
    assert [r.code for r in res] == [2, 2]
    lines = _error_lines(res)
    assert len(lines) == 1 and lines[0][0] == 0 and lines[0][1].startswith("ganzoo: error: --set: unknown key 'bogus_key'"), lines
    res = launch("train", *VANILLA, "--steps", 4, "--batch-size", 15, "--out", tmp_path / "y", cwd=tmp_path)
    assert [r.code for r in res] == [2, 2]
    lines = _error_lines(res)
    assert len(lines) == 1 and "batch_size 15 (the global batch) does not split over 2 processes" in lines[0][1], lines
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # (a hang would overrun launch's limit)


@pytest.fixture()
def faulty(tmp_path):
    """A plugin installed the way a user installs one (a module and its dist-info entry point)."""
    site = tmp_path / "site"
    (site / "faulty-0.dist-info").mkdir(parents=True)
    (site / "faulty_plugin.py").write_text(FAULTY)
    (site / "faulty-0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty\nVersion: 0\n")
    (site / "faulty-0.dist-info" / "entry_points.txt").write_text("[ganzoo]\nfaulty = faulty_plugin\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "FAULTY_RANK": "1"}


@pytest.mark.parametrize("mode", ["error", "nan"])
def test_a_failure_in_one_process_stops_all_with_one_line_naming_it(tmp_path, faulty, mode):
    """An error raised in rank 1 only: rank 1 says so in one line, rank 0 (waiting for it in a
    collective) exits quietly at once. A NaN in rank 1 only: every process stops at the next log
    step, and rank 0 reports where it started."""
    # no wall-clock bound of its own: rank 0 waiting out the collective timeout (GANZOO_DIST_TIMEOUT,
    # 300 s) would overrun launch's 90 s limit and fail as a hang; a tighter figure only measured load
    res = launch("train", "faulty", *VANILLA[1:], "--steps", 40, "--out", tmp_path / "run", cwd=tmp_path,
                 env={**faulty, "FAULTY_MODE": mode}, plugins="vanilla,losses,datasets,faulty", timeout=90)
    assert all(r.code != 0 for r in res), [r.code for r in res]
    lines = _error_lines(res)
    assert len(lines) == 1, lines
    if mode == "error":
        assert lines[0] == (1, "ganzoo: error: rank 1 of 2: the faulty step failed on purpose")
    else:
        assert lines[0][0] == 0 and "training diverged at step 4" in lines[0][1] and "first in rank 1, at step 3" in lines[0][1]
    assert "Traceback" not in "".join(r.err for r in res)


def test_nproc_restarts_the_command_through_torchrun(tmp_path):
    env = {**os.environ, ALLOW_ENV: PLUGINS}
    cmd = [sys.executable, "-m", "ganzoo", "train", *VANILLA, "--steps", "4", "--nproc", "2", "--out", "run"]
    p = subprocess.run(cmd,
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.splitlines() == ["run"]  # one process printed
    s = state(tmp_path / "run")
    assert s["step"] == 4
    import tomllib
    assert tomllib.loads((tmp_path / "run" / "config.toml").read_text())["batch_size"] == 32
    # a failure in the workers: their one line, the worker's exit status, no launcher report
    cmd = [c if c != "32" else "15" for c in cmd[:-1]] + ["bad"]
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "does not split over 2 processes" in lines[0], p.stderr[-3000:]


AGREE = r"""
import os, sys, torch
from ganzoo.engine import distributed
distributed.init()
r = distributed.rank()
answers = [distributed.any_rank(False), distributed.any_rank(r == 1), distributed.any_rank(r == 0)]
print(distributed.world_size(), answers)
distributed.shutdown()
"""


def test_any_rank_agrees_when_one_process_asks_to_stop(tmp_path):
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-c", AGREE], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
                                   "RANK": str(r), "LOCAL_RANK": str(r), "OMP_NUM_THREADS": "1"}) for r in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [o.strip() for o, _ in outs] == ["2 [False, True, True]"] * 2, outs


# -- in-process pieces ------------------------------------------------------------------------------
def test_context_draws_are_slices_of_the_global_draw():
    """With world size 2, ranks 0 and 1 each get their half of what one process draws for the global
    batch: latent codes, labels, uniform numbers (the gradient penalty's mixing)."""
    from ganzoo.api import DataInfo, StepContext

    def ctx(rank, world):
        g = torch.Generator().manual_seed(5)
        return StepContext(nets={}, hp={"latent_dim": 3}, info=DataInfo("image", num_classes=10), device=torch.device("cpu"),
                           loss=None, generator=g, rank=rank, world_size=world)

    one, r0, r1 = ctx(0, 1), ctx(0, 2), ctx(1, 2)
    for draw in (lambda c, n: c.noise(n), lambda c, n: c.random_labels(n), lambda c, n: c.rand(n, 1, 1, 1)):
        full = draw(one, 8)
        assert torch.equal(torch.cat([draw(r0, 4), draw(r1, 4)]), full)
    g = torch.arange(12.0).view(6, 2)
    assert torch.equal(r1.local_batch(g), g[3:]) and torch.equal(one.local_batch(g), g)
    assert torch.equal(one.gather_batch(g), g)


def test_sync_batchnorm_computes_batchnorm_and_its_double_backward(monkeypatch):
    """The synchronised path (here with a 1-process all-reduce) gives BatchNorm's outputs, running
    statistics, gradients and second-order gradients (R1 / gradient penalty through a BN critic)."""
    import copy

    from ganzoo.engine import syncbn

    monkeypatch.setattr(syncbn, "_synced", lambda: True)
    monkeypatch.setattr(syncbn.collective, "run", lambda fn, *a, **k: None)  # a 1-process sum: the identity
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3), torch.nn.LeakyReLU(0.2))
    bn[1].weight.data.uniform_(0.5, 1.5)
    bn[1].bias.data.uniform_(-0.5, 0.5)
    sbn = syncbn.convert_sync_batchnorm(copy.deepcopy(bn))
    assert isinstance(sbn[1], syncbn.SyncBatchNorm) and sbn.state_dict().keys() == bn.state_dict().keys()
    w = torch.randn(5, 3, 4, 4)
    for net in (bn, sbn):
        for _ in range(2):
            x = torch.randn(5, 2, 6, 6, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
            y = net(x)
            (g,) = torch.autograd.grad((y * w).pow(2).sum(), x, create_graph=True)
            (g.pow(2).sum() + y.sum()).backward()
    for (k, a), (_, b) in zip(bn.state_dict().items(), sbn.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    for (k, a), (_, b) in zip(bn.named_parameters(), sbn.named_parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5), k


def test_strip_nproc_keeps_the_rest_of_the_command_line():
    from ganzoo.engine.launch import strip_nproc

    argv = ["train", "dcgan", "--nproc", "2", "--set", "x=1", "--nproc=3", "--out", "r"]
    assert strip_nproc(argv) == ["train", "dcgan", "--set", "x=1", "--out", "r"]


def test_stop_requested_stops_at_that_step_with_a_checkpoint(tmp_path):
    """What every process agrees on at step end (any_rank): a request to stop ends the run at that
    step, checkpointed, without the end-of-run evaluation."""
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Callback, Trainer
    from ganzoo.registry import get_registry

    class StopAt3(Callback):
        def on_step_end(self, trainer, step, logs):
            trainer.stop_requested = step == 3

    with only_plugins(PLUGINS):
        reg = get_registry()
        spec = reg.get("architecture", "vanilla")
        run, hps = flatten_user(spec, {}, {"device": "cpu", "steps": 10, "batch_size": 16, "hidden": 8, "layers": 1})
        results = Trainer(resolve(reg, spec, run, hps), RunDir(tmp_path / "run"), callbacks=[StopAt3()], quiet=True).fit()
    assert results["stopped_at"] == 3 and results["steps"] == 3 and "modes" not in results
    assert state(tmp_path / "run")["step"] == 3
    assert not (tmp_path / "run" / "loss_curve.png").exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_a_setup_error_on_every_rank_closes_the_process_group_before_exiting(monkeypatch, rank):
    """Exiting with the gloo process group still open sometimes aborted a rank at interpreter exit
    ('terminate called without an active exception', signal 6): a user mistake then ended in three
    lines and exit status 1 instead of one line and 2 (seen with --nproc 2 --resume runs/missing)."""
    from ganzoo.engine import distributed

    closed = []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "is_main", lambda: rank == 0)
    monkeypatch.setattr(distributed, "shutdown", lambda: closed.append(True))
    with pytest.raises((distributed.EveryRankError, SystemExit)) as caught:
        distributed.report_rank_error(distributed.EveryRankError("run directory runs/nope does not exist"))
    assert closed == [True]
    if rank:
        assert caught.value.code == 2


def test_collectives_keep_their_works_until_newer_ones_push_them_out():
    """A collective's work (and its tensors) stays referenced from Python after it completed, so
    gloo's worker thread never frees it: freeing needs the GIL, which a main thread destroying the
    process group holds while it joins that worker (the end-of-run hang, ganzoo/engine/collective.py)."""
    import gc
    import weakref

    from ganzoo.engine import collective

    class Work:
        waited = False

        def wait(self):
            self.waited = True

    calls = []

    def op(*args, async_op=False, **kwargs):
        calls.append((args, async_op, kwargs))
        return Work()

    collective.run(op, "t", op="max")  # a keyword named like the wrapper's own parameter reaches the op
    first = weakref.ref(collective._works[-1])
    assert calls == [(("t",), True, {"op": "max"})] and first().waited
    gc.collect()
    assert first() is not None  # kept after it completed
    for _ in range(collective._KEEP):
        collective.run(op)
    gc.collect()
    assert first() is None  # pushed out by newer works: the main thread freed it
