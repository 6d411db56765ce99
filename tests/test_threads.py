"""The automatic thread choice (ganzoo.engine.threads) and --threads / OMP_NUM_THREADS on the CLI."""

from __future__ import annotations

import tomllib

import pytest
import torch

from ganzoo.engine import threads
from tests.conftest import invoke


# -- the decision on made-up machines ---------------------------------------------------------------
@pytest.mark.parametrize(
    "cores, busy, gmac, want, words",
    [
        (2, 1.0, 5.0, 1, "1 of 2 cores free"),  # one core taken by another job: never two threads
        (2, 0.0, 0.17, 1, "small model"),  # vanilla on ring8: too small to split
        (2, 0.05, 0.86, 2, "2 of 2 cores free"),  # dcgan at 16 px on an idle machine
        (2, 0.4, 5.0, 1, "1 of 2 cores free"),  # a core 40% busy is not free
        (16, 0.0, 1.2, 3, "one thread per 0.5 GMAC"),  # a thread per 0.5 GMAC begun, below the free cores
        (16, 3.0, 50.0, 13, "13 of 16 cores free"),  # big work: every free core
        (4, 9.0, 50.0, 1, "1 of 4 cores free"),  # overloaded: still one thread
        (1.5, 0.0, 50.0, 1, "1 of 1 cores free"),  # a cgroup quota of 1.5 CPUs
    ],
)
def test_decide(cores, busy, gmac, want, words):
    n, why = threads.decide(cores, busy, gmac)
    assert n == want
    assert why.startswith("auto: ") and words in why


def test_decide_without_work_uses_free_cores():
    assert threads.decide(8, 2.0, None) == (6, "auto: 6 of 8 cores free")


def test_busy_cores_from_proc_stat_deltas(monkeypatch):
    samples = iter([{0: (100, 1000), 1: (500, 1000)}, {0: (110, 1100), 1: (590, 1100)}])  # 10% and 90% busy
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: next(samples))
    busy, how = threads.busy_cores([0, 1], window_s=0.0)
    assert busy == pytest.approx(1.0)
    assert "/proc/stat" in how


def test_busy_cores_falls_back_on_load_average(monkeypatch):
    monkeypatch.setattr(threads, "_cpu_times", lambda cpus: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert threads.busy_cores([0, 1, 2, 3], window_s=0.0) == (1.5, "1-minute load average")


def test_real_proc_stat_sample_is_in_range():
    cpus = threads.usable_cores()
    busy, _ = threads.busy_cores(cpus, window_s=0.05)
    assert 0.0 <= busy <= len(cpus)


# -- precedence: option > OMP_NUM_THREADS > auto -----------------------------------------------------
@pytest.fixture
def machine(monkeypatch):
    """A made-up 2-core machine with one core busy; OMP_NUM_THREADS unset."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: [0, 1])
    monkeypatch.setattr(threads, "cgroup_quota", lambda: None)
    monkeypatch.setattr(threads, "busy_cores", lambda cpus, window_s=0: (1.0, "test"))
    return monkeypatch


def test_choose_precedence(machine):
    assert threads.choose({"threads": 3}) == threads.ThreadChoice(3, "option", "set by you")
    machine.setenv("OMP_NUM_THREADS", "4,2")
    assert threads.choose({"threads": 0}) == threads.ThreadChoice(4, "env", "OMP_NUM_THREADS=4")
    assert threads.choose({"threads": 2}).threads == 2
    machine.setenv("OMP_NUM_THREADS", "lots")  # unusable: ignored, as OpenMP itself would
    got = threads.choose({"threads": 0})
    assert (got.threads, got.source) == (1, "auto") and "1 of 2 cores free" in got.why


def test_step_gmac_counts_the_layers_and_leaves_the_run_untouched():
    from ganzoo.engine.build import build_run
    from ganzoo.engine.config import resolve
    from ganzoo.registry import get_registry

    reg = get_registry()
    spec = reg.get("architecture", "vanilla")
    cfg = resolve(reg, spec, {"data": "ring8", "batch_size": 10}, {"hidden": 16, "layers": 2, "latent_dim": 4})
    parts = build_run(cfg, reg)
    before = {k: [t.clone() for t in v.state_dict().values()] for k, v in parts.nets.items()}
    rng, noise = torch.get_rng_state(), parts.ctx.generator.get_state()
    gmac = threads.step_gmac(parts, batch_size=10, n_critic=2)
    # G: 4->16->16->2, D: 2->16->16->1 (multiply-adds per sample); d_step: G + 2 D passes; g_step: G + D
    g, d = 4 * 16 + 16 * 16 + 16 * 2, 2 * 16 + 16 * 16 + 16 * 1
    assert gmac * 1e9 == pytest.approx(10 * (2 * (g + 2 * d) + (g + d)))
    for k, v in parts.nets.items():
        assert all(torch.equal(a, b) for a, b in zip(before[k], v.state_dict().values()))
    assert torch.equal(rng, torch.get_rng_state()) and torch.equal(noise, parts.ctx.generator.get_state())


# -- the CLI -----------------------------------------------------------------------------------------
TINY = ["--steps", "2", "--set", "hidden=8", "--set", "layers=1", "--batch-size", "8"]


def _config(run):
    return tomllib.loads((run / "config.toml").read_text())


def test_cli_threads_option_is_honoured_recorded_and_restored(tmp_path, machine):
    torch.set_num_threads(1)
    seen = []
    machine.setattr(torch, "set_num_threads", lambda n, real=torch.set_num_threads: (seen.append(n), real(n)))
    r = invoke("train", "vanilla", *TINY, "--threads", "2", "--out", tmp_path / "a")
    assert r.code == 0, r.err
    assert r.lines[0].startswith("vanilla on ring8, cpu, 2 threads (set by you)"), r.lines[0]
    cfg = _config(tmp_path / "a")
    assert cfg["threads"] == 2 and cfg["decisions"]["threads"] == 2 and cfg["decisions"]["threads_why"] == "set by you"
    assert seen == [2, 1] and torch.get_num_threads() == 1  # set for the run, then given back


def test_cli_omp_num_threads_is_honoured_and_resume_keeps_an_explicit_count(tmp_path, machine):
    machine.setenv("OMP_NUM_THREADS", "1")
    r = invoke("train", "vanilla", *TINY, "--out", tmp_path / "b")
    assert r.code == 0, r.err
    assert "1 thread (OMP_NUM_THREADS=1)" in r.lines[0]
    cfg = _config(tmp_path / "b")
    assert cfg["threads"] == 0 and cfg["decisions"] == {"threads": 1, "threads_why": "OMP_NUM_THREADS=1"}
    # resume: --threads may change; the stored count is then kept on a later resume
    r = invoke("train", "vanilla", "--resume", tmp_path / "b", "--steps", "3", "--threads", "2")
    assert r.code == 0, r.err
    assert "2 threads (set by you), steps 2 -> 3" in r.lines[0]
    machine.delenv("OMP_NUM_THREADS")
    r = invoke("train", "vanilla", "--resume", tmp_path / "b", "--steps", "4")
    assert r.code == 0, r.err
    assert _config(tmp_path / "b")["decisions"]["threads"] == 2 and "2 threads (set by you)" in r.lines[0]


def test_cli_auto_on_a_busy_machine_picks_one_thread(tmp_path, machine):
    r = invoke("train", "vanilla", *TINY, "--out", tmp_path / "c")
    assert r.code == 0, r.err
    why = _config(tmp_path / "c")["decisions"]["threads_why"]
    assert why.startswith("auto: 1 of 2 cores free, small model") and why in r.lines[0]


def test_cli_bad_threads(tmp_path):
    r = invoke("train", "vanilla", *TINY, "--threads", "-1", "--out", tmp_path / "d")
    assert r.code == 2 and "--threads must be a positive number" in r.err
    assert not (tmp_path / "d").exists()
