"""Runs that survive interruption, as a user meets them: real ``ganzoo train`` processes stopped with
SIGINT/SIGTERM (graceful: checkpoint, resume command, 130/143) or SIGKILL (at most one checkpoint
interval lost), then resumed to end bit-identical to an uninterrupted run, for EVERY registered
architecture (parametrized over the registry, not a hand-written list).

A killed process is slowed down by a sleep before each step (``SLOW``) so that the signal lands
mid-run on any machine; the sleep touches no random state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import invoke
from ganzoo.registry import ALLOW_ENV, Registry, reset_registry

REG = Registry()
REG.load_entry_points(allow=None)
ARCHS = REG.names("architecture")
STEPS = 16

# `ganzoo train ...` with a pause before every step (the engine itself is untouched)
SLOW = ("import os, sys, time\n"
        "from ganzoo.engine.trainer import Trainer\n"
        "step = Trainer.train_step\n"
        "delay = float(sys.argv.pop(1))\n"
        "mark = os.environ.get('STEP_MARK')  # a file naming the step now under way (sleeping)\n"
        "def slow(self, k):\n"
        "    if mark:\n"
        "        open(mark, 'w').write(str(k))\n"
        "    time.sleep(delay)\n"
        "    return step(self, k)\n"
        "Trainer.train_step = slow\n"
        "from ganzoo.cli.main import main\n"
        "sys.argv[0] = 'ganzoo'\n"
        "main()\n")


@pytest.fixture(scope="module")
def all_plugins():
    """The CLI in-process with every installed plugin loaded (no GANZOO_PLUGINS allowlist)."""
    old = os.environ.pop(ALLOW_ENV, None)
    reset_registry()
    try:
        yield invoke
    finally:
        if old is not None:
            os.environ[ALLOW_ENV] = old
        reset_registry()


def settings(arch: str, steps: int = STEPS) -> list[str]:
    """Tiny settings from the spec, EMA on, a checkpoint every 3 steps."""
    spec = REG.get("architecture", arch)
    sets = {"batch_size": 16, "seed": 3, "device": "cpu", "ema": 0.9, "log_every": 2, "sample_every": 8,
            "checkpoint_every": 3, "eval_samples": 200, **spec.tiny}
    args = ["--steps", steps]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return [str(a) for a in args]


def start(arch: str, out: Path, *args: str, delay: float = 0.03, mark: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != ALLOW_ENV}
    env["OMP_NUM_THREADS"] = "1"
    if mark:
        env["STEP_MARK"] = str(mark)
    return subprocess.Popen([sys.executable, "-c", SLOW, str(delay), "train", arch, "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)


def wait_for(p: subprocess.Popen, pred, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if p.poll() is not None:
            out, err = p.communicate()
            pytest.fail(f"the run ended (exit {p.returncode}) before {what}:\n{err[-2000:]}")
        if time.monotonic() > deadline:
            p.kill()
            p.communicate(timeout=30)
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.01)


def read_until(p: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """What the process wrote on stderr up to a line containing ``text``."""
    import select

    got = ""
    deadline = time.monotonic() + timeout
    while text not in got:
        left = deadline - time.monotonic()
        if left <= 0 or p.poll() is not None:
            pytest.fail(f"no '{text}' on stderr (exit {p.poll()}):\n{got[-2000:]}")
        ready, _, _ = select.select([p.stderr], [], [], min(left, 0.5))
        if ready:
            got += p.stderr.readline()
    return got


def has_checkpoint(run: Path, min_step: int = 1):
    return lambda: any(int(p.stem[5:]) >= min_step for p in (run / "checkpoints").glob("step_*.pt"))


def final(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)


def assert_identical(a: dict, b: dict) -> None:
    """Weights, EMA weights and optimiser states equal bit for bit."""
    assert a["step"] == b["step"]
    for part in ("nets", "ema"):
        assert a[part].keys() == b[part].keys()
        for net in a[part]:
            for k, v in a[part][net].items():
                assert torch.equal(v, b[part][net][k]), f"{part}.{net}.{k} differs"
    for g in ("G", "D"):
        sa, sb = a["optim"][g]["state"], b["optim"][g]["state"]
        assert sa.keys() == sb.keys() and len(sa) > 0
        for i in sa:
            for k, v in sa[i].items():
                assert torch.equal(v, sb[i][k]), f"optimiser {g} state {i}.{k} differs"
        assert a["optim"][g]["param_groups"] == b["optim"][g]["param_groups"]


def train_straight(cli, arch: str, out: Path, steps: int = STEPS) -> dict:
    r = cli("train", arch, "--out", out, "--quiet", *settings(arch, steps))
    assert r.code == 0 and r.exception is None, (r.code, r.err, r.exception)
    return final(out)


@pytest.mark.parametrize("arch", ARCHS)
def test_kill_9_then_resume_is_bit_identical(all_plugins, tmp_path, arch):
    straight = train_straight(all_plugins, arch, tmp_path / "straight")
    run = tmp_path / "killed"
    p = start(arch, run, *settings(arch), delay=0.05)
    try:
        wait_for(p, has_checkpoint(run), "first checkpoint")
        time.sleep(0.04 * ARCHS.index(arch))  # kill at a different moment for each architecture
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    saved = sorted(int(q.stem[5:]) for q in (run / "checkpoints").glob("step_*.pt"))
    assert saved and saved[-1] < STEPS, "the kill must land mid-run"
    r = all_plugins("train", arch, "--resume", run, "--steps", STEPS, "--quiet")
    assert r.code == 0 and r.exception is None, (r.code, r.err, r.exception)
    assert_identical(final(run), straight)
    assert not [q for q in (run / "checkpoints").iterdir() if q.name.startswith(".")], "temp files left behind"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_after_the_step_with_a_checkpoint(all_plugins, tmp_path, sig, code):
    arch = "vanilla"
    run = tmp_path / "run"
    mark = tmp_path / "step"
    p = start(arch, run, *settings(arch), "--set", "checkpoint_every=100", delay=0.2, mark=mark)
    try:
        wait_for(p, lambda: mark.is_file() and mark.read_text() == "5", "step 5")  # mid-run, between checkpoints
        p.send_signal(sig)
        p.send_signal(signal.SIGTERM)  # as torchrun passes a stop on to its workers: still one graceful stop
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.startswith("ganzoo: ")]
    assert "Traceback" not in err
    last = lines[-1]
    k = final(run)["step"]
    assert last == f"ganzoo: {sig.name}: stopped at step {k}; resume with: ganzoo train {arch} --resume {run}", err
    assert k == 5  # checkpoint_every=100: the only checkpoint is the one the signal asked for
    assert sorted(q.name for q in (run / "checkpoints").iterdir()) == ["last.pt", f"step_{k:06d}.pt"]
    assert "stopped at step" in (run / "report.html").read_text()
    # the printed command continues the run; with the same --steps it ends as if never stopped
    r = all_plugins(*last.split("resume with: ganzoo ", 1)[1].split(), "--quiet")
    assert r.code == 0 and r.exception is None, (r.code, r.err)
    if sig == signal.SIGINT:
        return  # the same path as SIGTERM from here: compared once, below
    assert_identical(final(run), train_straight(all_plugins, arch, tmp_path / "straight"))
    assert records(run) == records(tmp_path / "straight"), "the resumed run logs what a straight run logs"


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(ln).items() if k != "time"} for ln in lines]


def test_second_ctrl_c_aborts_at_once(tmp_path):
    arch = "vanilla"
    run = tmp_path / "run"
    mark = tmp_path / "step"
    p = start(arch, run, *settings(arch, steps=1000), "--set", "checkpoint_every=4", delay=2.5, mark=mark)
    try:
        wait_for(p, lambda: mark.is_file() and mark.read_text() == "6", "step 6")  # in its 2.5 s pause
        p.send_signal(signal.SIGINT)
        seen = read_until(p, "SIGINT received")  # the first Ctrl-C was handled ...
        p.send_signal(signal.SIGTERM)  # ... the stop passed on again (docker, SLURM, torchrun): not an abort
        p.send_signal(signal.SIGINT)  # a person's second Ctrl-C, in the same (2.5 s) step
        out, err = p.communicate(timeout=30)
        err = seen + err
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "Traceback" not in err
    k = final(run)["step"]
    assert f"ganzoo: SIGINT: aborted at once; the checkpoint of step {k} is kept; resume with: ganzoo train vanilla --resume {run}" in err
    assert k == 4, "no checkpoint is written after the second Ctrl-C"


def test_changed_steps_with_a_length_dependent_schedule_says_so(all_plugins, tmp_path):
    scheduled = [a for a in ARCHS if REG.get("architecture", a).lr_factor is not None]
    assert scheduled, "no architecture with a schedule over the run's length to check"
    arch = scheduled[0]
    run = tmp_path / "run"
    train_straight(all_plugins, arch, run, steps=4)
    r = all_plugins("train", arch, "--resume", run, "--steps", 6, "--quiet")
    assert r.code == 0, r.err
    notes = [ln for ln in r.err.splitlines() if "changes course" in ln]
    assert len(notes) == 1 and "--steps 6 instead of 4" in notes[0]
    r = all_plugins("train", "vanilla", "--out", tmp_path / "v", "--quiet", *settings("vanilla", 4))
    r = all_plugins("train", "vanilla", "--resume", tmp_path / "v", "--steps", 6, "--quiet")
    assert r.code == 0 and "changes course" not in r.err  # constant learning rate: nothing to say


def test_python_api_stop_request(cli, tmp_path):
    """The flag a signal sets, set from code: the step finishes, is checkpointed, TrainingStopped says how to resume."""
    from ganzoo.engine.config import flatten_user, resolve
    from ganzoo.engine.interrupt import TrainingStopped
    from ganzoo.engine.rundir import RunDir
    from ganzoo.engine.trainer import Callback, Trainer
    from ganzoo.registry import get_registry

    class StopAt(Callback):
        def on_step_end(self, trainer, step, logs):
            if step == 7:
                trainer.stop.request(signal.SIGTERM)

    reg = get_registry()
    spec = reg.get("architecture", "vanilla")
    run, hps = flatten_user(spec, {}, {"steps": 20, "device": "cpu", "hidden": 16, "layers": 2, "batch_size": 16})
    trainer = Trainer(resolve(reg, spec, run, hps), RunDir(tmp_path / "api"), callbacks=[StopAt()], quiet=True)
    with pytest.raises(TrainingStopped) as info:
        trainer.fit()
    stopped = info.value
    assert (stopped.step, stopped.exit_code, stopped.aborted) == (7, 143, False)
    assert stopped.resume_command == f"ganzoo train vanilla --resume {tmp_path / 'api'}"
    assert final(tmp_path / "api")["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers were put back
