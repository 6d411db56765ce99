"""Third-party plugins, installed the way a user installs them and run through the real CLI.

* ``docs/examples/ganzoo-example-plugin`` is pip-installed (offline, ``--target``) into a temporary
  folder, never into the dev environment, and the CLI runs in a child interpreter whose
  ``PYTHONPATH`` has that folder: ``pacgan`` and ``rsgan`` come from its entry points.
* Hand-written ``*.dist-info`` folders stand for a plugin that fails to import and one whose hook
  returns an invalid spec: the CLI keeps working, warns once, and fails in one line when strict.

To keep the cost to one torch import per scenario, several commands run in one child interpreter
through click's CliRunner (standalone mode: exit codes and messages are the user's); the strict
failure also runs as a plain ``ganzoo`` process.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ganzoo.registry import ALLOW_ENV, STRICT_ENV

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "ganzoo-example-plugin"
BUILTIN = "vanilla,losses,datasets"
SMALL = ["--quiet", "--batch-size", "16", "--set", "hidden=16", "--set", "eval_samples=64", "--set", "ema=0"]

# Runs a list of [argv, env] through the CLI in one process; prints one JSON record per command.
DRIVER = r"""
import json, sys
from click.testing import CliRunner
from ganzoo.cli.main import cli
from ganzoo.registry import reset_registry

records = []
for argv, env in json.load(sys.stdin):
    reset_registry()
    r = CliRunner().invoke(cli, argv, env=env, prog_name="ganzoo")
    exc = None if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)
    records.append({"argv": argv, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "exc": exc})
sys.stdout.write(json.dumps(records))
"""


def _env(pythonpath: Path, allow: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (STRICT_ENV, ALLOW_ENV)}
    env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if allow is not None:
        env[ALLOW_ENV] = allow
    env["OMP_NUM_THREADS"] = "1"
    return env


def _drive(pythonpath: Path, allow: str, commands: list[tuple[list[str], dict[str, str]]]) -> list[dict]:
    p = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(commands), capture_output=True,
                       text=True, env=_env(pythonpath, allow), timeout=300)
    assert p.returncode == 0, p.stderr
    records = json.loads(p.stdout)
    for rec in records:
        assert rec["exc"] is None, rec  # an exception the CLI did not turn into a message
    return records


def _ganzoo(pythonpath: Path, allow: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    code = "from ganzoo.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**_env(pythonpath, allow), **env}, timeout=300)


def _one_line_error(code: int, stdout: str, stderr: str, *words: str) -> str:
    assert code == 2 and stdout == "", (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: "), stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# -- the example package -----------------------------------------------------------------------
def test_example_plugin_imports_only_the_public_api():
    allowed = {"__future__", "ganzoo", "ganzoo.api", "math", "torch", "torch.nn", "torch.nn.functional"}
    files = sorted((EXAMPLE / "ganzoo_example").glob("*.py"))
    assert {f.name for f in files} >= {"pacgan.py", "rsgan.py"}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 or node.module is None, f"{f.name}: relative import"
                mods = [node.module or ""]
            else:
                continue
            assert set(mods) <= allowed, f"{f.name} imports {mods}"
    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "ganzoo-example-plugin" and meta["project"]["version"] == "0.1.0"
    assert meta["project"]["entry-points"]["ganzoo"] == {"pacgan": "ganzoo_example.pacgan", "rsgan": "ganzoo_example.rsgan"}
    tests = (EXAMPLE / "tests" / "test_example.py").read_text()  # its tests use the public kit only
    imports = {n.module for n in ast.walk(ast.parse(tests)) if isinstance(n, ast.ImportFrom)}
    assert imports == {"ganzoo.testing"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin pip-installed into a folder of its own (built from a copy, so the build
    leaves nothing in the repository)."""
    root = tmp_path_factory.mktemp("third_party")
    src = root / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    p = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--disable-pip-version-check", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert (target / "ganzoo_example" / "pacgan.py").is_file()
    assert len(list(target.glob("ganzoo_example_plugin-0.1.0.dist-info"))) == 1
    return target


@pytest.fixture(scope="module")
def example_runs(site, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    allow = BUILTIN + ",pacgan,rsgan"
    commands = {
        "list": ["list"],
        "plugins": ["plugins", "--json"],
        "info": ["info", "pacgan"],
        "pac": ["train", "pacgan", "--steps", "3", "--out", str(out / "pac"), *SMALL],
        "eval": ["eval", str(out / "pac"), "--json"],
        "rs": ["train", "vanilla", "--loss", "rsgan", "--steps", "2", "--out", str(out / "rs"), *SMALL],
        "pacrs": ["train", "pacgan", "--loss", "rsgan", "--pack", "4", "--steps", "2", "--out", str(out / "pacrs"), *SMALL],
        "tiny": ["train", "pacgan", "--steps", "1", "--out", str(out / "tiny"), "--batch-size", "1", "--quiet"],
        "zero": ["train", "pacgan", "--steps", "1", "--out", str(out / "zero"), "--set", "pack=0", "--quiet"],
    }
    records = _drive(site, allow, [(argv, {}) for argv in commands.values()])
    return out, dict(zip(commands, records))


def test_list_names_the_example_plugin_and_its_version(example_runs):
    _, rec = example_runs
    r = rec["list"]
    assert r["code"] == 0 and r["stderr"] == ""
    lines = r["stdout"].splitlines()
    for name in ("pacgan", "rsgan"):
        line = next(line for line in lines if line.startswith(f"  {name} "))
        assert line.endswith("[ganzoo-example-plugin 0.1.0]")
    assert any(line.startswith("  vanilla ") and line.endswith("[ganzoo 0.1.0]") for line in lines)


def test_plugins_shows_the_example_distribution(example_runs):
    _, rec = example_runs
    data = json.loads(rec["plugins"]["stdout"])
    by_name = {p["plugin"]: p for p in data["plugins"]}
    assert by_name["pacgan"] == {"plugin": "pacgan", "distribution": "ganzoo-example-plugin", "version": "0.1.0",
                                 "builtin": False, "hooks": ["ganzoo_architectures"], "error": None, "warning": None}
    assert by_name["rsgan"]["hooks"] == ["ganzoo_losses"] and by_name["rsgan"]["error"] is None


def test_info_pacgan_has_the_pack_hyper_parameter(example_runs):
    _, rec = example_runs
    out = rec["info"]["stdout"]
    assert "plugin:         ganzoo-example-plugin 0.1.0" in out
    pack = next(line for line in out.splitlines() if line.strip().startswith("pack "))
    assert pack.split()[:4] == ["pack", "int", "default", "2"]


def test_train_pacgan_leaves_config_and_checkpoint(example_runs):
    out, rec = example_runs
    r = rec["pac"]
    assert r["code"] == 0, r
    assert r["stdout"].strip() == str(out / "pac")
    cfg = tomllib.loads((out / "pac" / "config.toml").read_text())
    assert cfg["arch"] == "pacgan" and cfg["loss"] == "ns" and cfg["steps"] == 3 and cfg["hparams"]["pack"] == 2
    assert (out / "pac" / "checkpoints" / "last.pt").stat().st_size > 0
    steps = [json.loads(line)["step"] for line in (out / "pac" / "metrics.jsonl").read_text().splitlines()]
    assert 3 in steps
    ev = json.loads(rec["eval"]["stdout"])  # the run reopens from its directory
    assert ev["arch"] == "pacgan" and ev["step"] == 3


def test_third_party_loss_trains_a_builtin_architecture(example_runs):
    out, rec = example_runs
    for run in ("rs", "pacrs"):
        r = rec[run]
        assert r["code"] == 0, r
        cfg = tomllib.loads((out / run / "config.toml").read_text())
        assert cfg["loss"] == "rsgan" and (out / run / "checkpoints" / "last.pt").is_file()
        losses = [json.loads(line) for line in (out / run / "metrics.jsonl").read_text().splitlines()]
        assert any("d_loss" in m and "g_loss" in m for m in losses)
    assert tomllib.loads((out / "pacrs" / "config.toml").read_text())["hparams"]["pack"] == 4


def test_pacgan_mistakes_are_one_line(example_runs):
    _, rec = example_runs
    r = rec["tiny"]
    _one_line_error(r["code"], r["stdout"], r["stderr"], "pacgan packs 2 samples", "--batch-size 2")
    r = rec["zero"]
    _one_line_error(r["code"], r["stdout"], r["stderr"], "cannot build 'pacgan'", "pack must be at least 1")


def _load_example(module: str):
    """Import a module of the example from its source file, without putting the package on sys.path
    (which would make its entry points visible to the rest of this test session)."""
    spec = importlib.util.spec_from_file_location(f"_example_{module}", EXAMPLE / "ganzoo_example" / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rsgan_matches_its_formula():
    import torch
    (spec,) = _load_example("rsgan").ganzoo_losses()
    assert spec.name == "rsgan" and spec.g_uses_real
    r, f = torch.tensor([[2.0], [0.0], [5.0]]), torch.tensor([[1.0], [1.0]])
    rr = r[:2]  # samples are paired; the longer side is cut
    assert torch.allclose(spec.d_loss(r, f), -torch.log(torch.sigmoid(rr - f)).mean())
    assert torch.allclose(spec.g_loss(f, r), -torch.log(torch.sigmoid(f - rr)).mean())
    # relativistic: adding a constant to every output changes nothing
    assert torch.allclose(spec.d_loss(r + 3, f + 3), spec.d_loss(r, f))


def test_packed_discriminator_scores_packs():
    import torch
    d = _load_example("pacgan").PackedDiscriminator(8, 2, (2,), pack=3)
    x = torch.randn(7, 2)
    out = d(x)  # packs (x0, x1, x2) and (x3, x4, x5); x6 is a remainder and is dropped
    assert out.shape == (2, 1) and d.net[0].in_features == 6
    assert torch.allclose(out, d.net(x[:6].reshape(2, 6)))
    assert torch.allclose(out, d(x[:6]))
    with pytest.raises(ValueError, match="at least 3 samples"):
        d(x[:2])


def test_context_passes_real_outputs_only_to_losses_that_use_them():
    import torch
    from ganzoo import GanzooError, LossSpec
    from ganzoo.api import DataInfo, StepContext

    (rs,) = _load_example("rsgan").ganzoo_losses()
    seen = []
    plain = LossSpec("plain", "plain", d_loss=lambda r, f: 0, g_loss=lambda f: seen.append(f.shape) or f.mean())
    critic = torch.nn.Linear(2, 1)
    real, fake = torch.randn(4, 2), torch.randn(4, 2, requires_grad=True)

    def ctx(loss):
        return StepContext(nets={}, hp={}, info=DataInfo("points", dim=2), device=torch.device("cpu"), loss=loss)

    out = ctx(rs).generator_loss(critic, real, fake)
    with torch.no_grad():
        want = -torch.log(torch.sigmoid(critic(fake) - critic(real))).mean()
    assert torch.allclose(out["loss"], want)
    out["loss"].backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # the generator gets a gradient
    ctx(plain).generator_loss(critic, real, fake)
    assert seen == [(4, 1)]  # a plain loss is called with the fake outputs only
    with pytest.raises(GanzooError, match="loss 'rsgan' compares fake with real outputs"):
        ctx(rs).g_loss(critic(fake))


# -- broken plugins ----------------------------------------------------------------------------
def _fake_dist(root: Path, dist: str, ep: str, module: str, source: str) -> None:
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{ep} = {module}\n")
    (root / f"{module}.py").write_text(source)


BAD_SPEC = """
from ganzoo import ArchitectureSpec, hookimpl

@hookimpl
def ganzoo_architectures():
    return [ArchitectureSpec("voxelgan", "3D", build=dict, make_step=dict, data_kinds=("voxels",))]
"""


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("broken")
    _fake_dist(root, "broken-plugin", "broken", "broken_plugin", "raise RuntimeError('this plugin is broken on purpose')\n")
    _fake_dist(root, "badspec-plugin", "badspec", "badspec_plugin", BAD_SPEC)
    return root


BROKEN = {
    "broken": ("broken-plugin", "failed to import broken_plugin: RuntimeError: this plugin is broken on purpose"),
    "badspec": ("badspec-plugin", "returned an invalid spec: architecture 'voxelgan': data_kinds must be among"),
}


@pytest.fixture(scope="module")
def broken_runs(broken_site):
    commands, labels = [], []
    for plugin in BROKEN:
        env = {ALLOW_ENV: f"{BUILTIN},{plugin}"}
        for label, argv, extra in (("list", ["list"], {}), ("plugins", ["plugins"], {}),
                                   ("info", ["info", "voxelgan"], {}), ("strict", ["list"], {STRICT_ENV: "1"})):
            commands.append((argv, {**env, **extra}))
            labels.append((plugin, label))
    return dict(zip(labels, _drive(broken_site, BUILTIN, commands)))


@pytest.mark.parametrize("plugin", list(BROKEN))
def test_a_broken_plugin_does_not_break_the_cli(broken_runs, plugin):
    dist, error = BROKEN[plugin]
    listed, plugins, info, strict_list = (broken_runs[plugin, k] for k in ("list", "plugins", "info", "strict"))
    # the CLI keeps working and warns once, naming the plugin
    assert listed["code"] == 0 and "  vanilla " in listed["stdout"] and "voxelgan" not in listed["stdout"]
    warnings = listed["stderr"].strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"ganzoo: warning: plugin '{plugin}' ({dist} 0.1)")
    assert error in warnings[0] and "ganzoo plugins" in warnings[0]
    # `ganzoo plugins` shows the error
    assert plugins["code"] == 0
    row = next(line for line in plugins["stdout"].splitlines() if line.startswith(plugin))
    assert "ERROR" in row and f"{dist} 0.1" in row
    assert error in plugins["stdout"]
    assert any(line.startswith("vanilla ") and " ok " in line for line in plugins["stdout"].splitlines())
    # a lookup that may concern the broken plugin says where to look
    assert len(info["stderr"].strip().splitlines()) == 2  # the warning, then the error
    _one_line_error(info["code"], info["stdout"], info["stderr"].splitlines()[-1], "some plugins failed to load")
    # strict: one line, exit 2
    _one_line_error(strict_list["code"], strict_list["stdout"], strict_list["stderr"], f"plugin '{plugin}'", error, STRICT_ENV)


def test_strict_failure_in_a_plain_process(broken_site):
    p = _ganzoo(broken_site, f"{BUILTIN},broken", "list", **{STRICT_ENV: "1"})
    _one_line_error(p.returncode, p.stdout, p.stderr, "plugin 'broken' (broken-plugin 0.1)", "broken on purpose")
    assert "Traceback" not in p.stderr


# -- name clashes: nothing a third party installs changes what a user trains --------------------------
CLASH_LOSS = """
from ganzoo import LossSpec, hookimpl

def _never(*args):
    raise RuntimeError("the replacement {name} was used")

@hookimpl
def ganzoo_losses():
    return [LossSpec({name!r}, "a replacement {name}", _never, _never), LossSpec({extra!r}, "its own loss", _never, _never)]
"""


@pytest.fixture(scope="module")
def clash_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("clash")
    _fake_dist(root, "hinge-plugin", "aaa", "clash_hinge", CLASH_LOSS.format(name="hinge", extra="own-a"))
    _fake_dist(root, "renamer-plugin", "losses", "clash_losses", CLASH_LOSS.format(name="hinge", extra="own-b"))
    _fake_dist(root, "twin-a", "twina", "clash_twin_a", CLASH_LOSS.format(name="twin", extra="own-c"))
    _fake_dist(root, "twin-b", "twinb", "clash_twin_b", CLASH_LOSS.format(name="twin", extra="own-d"))
    allow = f"{BUILTIN},hinge-plugin,renamer-plugin,twin-a,twin-b"
    out = tmp_path_factory.mktemp("clash_runs")
    commands = [(["plugins", "--json"], {}), (["list", "losses", "--json"], {}), (["plugins"], {}),
                (["train", "vanilla", "--loss", "hinge", "--steps", "2", "--out", str(out / "h"), *SMALL], {})]
    return out, _drive(root, allow, commands)


def test_a_clash_never_changes_what_a_user_trains(clash_runs):
    out, (plugins, listed, table, train) = clash_runs
    data = json.loads(plugins["stdout"])
    by_name = {p["plugin"]: p for p in data["plugins"]}
    # the entry point named 'losses' of another distribution does not rename the built-in one
    assert by_name["losses"]["distribution"] == "ganzoo" and by_name["losses"]["error"] is None
    assert by_name["losses"]["builtin"] is True
    renamer = by_name["renamer-plugin:losses"]
    assert renamer["distribution"] == "renamer-plugin" and not renamer["builtin"]
    for name in ("aaa", "renamer-plugin:losses"):  # reusing a built-in name: refused, whatever the order
        assert "loss 'hinge' is a built-in name of ganzoo" in by_name[name]["error"]
    for name in ("twina", "twinb"):  # two third parties: both refused, naming both
        err = by_name[name]["error"]
        assert "duplicate loss 'twin'" in err and "twin-a 0.1" in err and "twin-b 0.1" in err
    losses = {rec["name"]: rec for rec in json.loads(listed["stdout"])}
    assert losses["hinge"]["distribution"] == "ganzoo" and "twin" not in losses
    assert {"own-a", "own-b", "own-c", "own-d"} <= set(losses)  # their other specs still load
    rows = {line.split()[0]: line for line in table["stdout"].splitlines() if line and not line.startswith(" ")}
    assert all("ERROR" in rows[n] for n in ("aaa", "renamer-plugin:losses", "twina", "twinb"))
    assert " ok " in rows["losses"]
    warnings = listed["stderr"].strip().splitlines()
    assert len(warnings) == 4 and all(w.startswith("ganzoo: warning: plugin '") for w in warnings)
    assert train["code"] == 0, train  # the built-in hinge trained (the replacements raise when called)
    assert tomllib.loads((out / "h" / "config.toml").read_text())["loss"] == "hinge"


def test_the_example_plugins_own_tests_pass_with_the_kit(site):
    """The example's tests/ (ganzoo.testing and the pytest11 fixtures only), run by pytest as the
    plugin's author runs them, strict, with the plugin installed."""
    src = site.parent / "src"
    env = _env(site, BUILTIN + ",ganzoo-example-plugin")
    env[STRICT_ENV] = "1"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "tests"],
                       cwd=src, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "4 passed" in p.stdout
