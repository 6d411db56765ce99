"""The plugin registry, exercised with fresh ``Registry()`` objects and plugins defined here.

Plugins are registered in-process (as simonw/llm's tests do) or through hand-written ``*.dist-info``
folders on ``sys.path``, so entry-point discovery, providers and the allowlist are tested for real.
No test here imports torch.
"""

from __future__ import annotations

import sys
import textwrap
from types import SimpleNamespace

import pytest

from ganzoo import ArchitectureSpec, DatasetSpec, GanzooError, HParam, LossSpec, hookimpl
from ganzoo.errors import PluginError
from ganzoo.registry import ALLOW_ENV, STRICT_ENV, Provider, Registry


def _loss(name, summary="a test loss"):
    return LossSpec(name, summary, d_loss=lambda r, f: 0.0, g_loss=lambda f: 0.0)


def _arch(name, **kw):
    def build(info, hp):
        return {"G": ("G", info, dict(hp)), "D": ("D", info, dict(hp))}

    kw.setdefault("hparams", (HParam("hidden", int, 32, "width"), HParam("act", str, "relu", "", choices=("relu", "tanh"))))
    return ArchitectureSpec(name, f"test architecture {name}", build=build, make_step=lambda hp: None, **kw)


class LossPlugin:
    def __init__(self, *names):
        self.names = names

    @hookimpl
    def ganzoo_losses(self):
        return [_loss(n) for n in self.names]


class ArchPlugin:
    def __init__(self, *specs):
        self.specs = specs

    @hookimpl
    def ganzoo_architectures(self):
        return list(self.specs)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.delenv(ALLOW_ENV, raising=False)


@pytest.fixture
def reg():
    return Registry()


# -- collecting specs ---------------------------------------------------------------------------
def test_specs_are_collected_with_their_provider(reg):
    rec = reg.register(LossPlugin("l1", "l2"), "alpha", Provider("alpha", "alpha-dist", "1.2.3"))
    reg.register(ArchPlugin(_arch("mlp")), "beta", Provider("beta", "beta-dist", "0.4"))
    assert rec.error is None and rec.hooks == ["ganzoo_losses"]
    assert reg.names("losses") == ["l1", "l2"]
    entry = reg.entry("loss", "l2")
    assert (entry.provider.plugin, entry.provider.dist, entry.provider.version) == ("alpha", "alpha-dist", "1.2.3")
    assert str(entry.provider) == "alpha-dist 1.2.3"
    assert reg.entry("architecture", "mlp").provider.dist == "beta-dist"
    assert reg.plugins["beta"].hooks == ["ganzoo_architectures"]
    assert reg.errors == []


def test_unregister_removes_the_plugin_and_its_specs(reg):
    reg.register(LossPlugin("l1"), "alpha")
    reg.register(LossPlugin("l2"), "beta")
    reg.unregister("alpha")
    assert reg.names("loss") == ["l2"] and "alpha" not in reg.plugins
    reg.register(LossPlugin("l1"), "alpha")  # the name is free again
    assert reg.names("loss") == ["l1", "l2"]


def test_registering_one_name_twice_is_refused(reg):
    reg.register(LossPlugin("l1"), "alpha")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(LossPlugin("l2"), "alpha")
    assert reg.names("loss") == ["l1"] and reg.plugins["alpha"].error is None


BUILTIN = Provider("core", "ganzoo", "0.1.0", builtin=True)


@pytest.mark.parametrize("builtin_first", [True, False], ids=["builtin-first", "third-party-first"])
def test_a_builtin_name_is_reserved_whatever_the_order(reg, builtin_first):
    core = PluginWithSpec(_loss("hinge", "the built-in hinge"), _loss("ns"))
    evil = PluginWithSpec(_loss("hinge", "a replacement"), _loss("extra"))
    steps = [(core, "core", BUILTIN), (evil, "evil", Provider("evil", "evil-dist", "9.9"))]
    for obj, name, prov in steps if builtin_first else steps[::-1]:
        reg.register(obj, name, prov)
    assert reg.get("loss", "hinge").summary == "the built-in hinge"
    assert reg.entry("loss", "hinge").provider.builtin
    assert reg.names("loss") == ["extra", "hinge", "ns"]  # the third party's other spec still loads
    assert reg.plugins["core"].error is None
    err = reg.plugins["evil"].error
    assert "loss 'hinge' is a built-in name of ganzoo 0.1.0" in err and "evil-dist 9.9 is refused" in err
    (msg,) = reg.errors
    assert msg.startswith("plugin 'evil' (evil-dist 9.9)") and "\n" not in msg


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_two_third_party_specs_with_one_name_are_both_refused(reg, order):
    plugins = [(PluginWithSpec(_loss("dup", "first one")), "alpha", Provider("alpha", "alpha-dist", "1.0")),
               (PluginWithSpec(_loss("dup", "second one"), _loss("other")), "beta", Provider("beta", "beta-dist", "2.0"))]
    for i in order:
        reg.register(*plugins[i])
    assert reg.names("loss") == ["other"]  # neither 'dup'; the rest of the second plugin still loads
    with pytest.raises(GanzooError, match="unknown loss 'dup'.*some plugins failed to load"):
        reg.get("loss", "dup")
    for name in ("alpha", "beta"):
        err = reg.plugins[name].error
        assert "duplicate loss 'dup'" in err and "alpha-dist 1.0" in err and "beta-dist 2.0" in err, err
    assert len(reg.errors) == 2
    # a third one is refused too, and a built-in with that name still takes it
    reg.register(PluginWithSpec(_loss("dup")), "gamma", Provider("gamma", "gamma-dist", "3"))
    assert "duplicate loss 'dup'" in reg.plugins["gamma"].error and reg.names("loss") == ["other"]
    reg.register(PluginWithSpec(_loss("dup", "built in")), "core", BUILTIN)
    assert reg.get("loss", "dup").summary == "built in" and reg.plugins["core"].error is None


def test_same_name_in_two_kinds_is_fine(reg):
    reg.register(ArchPlugin(_arch("same")), "a")
    reg.register(LossPlugin("same"), "b")
    assert reg.names("architecture") == ["same"] and reg.names("loss") == ["same"] and not reg.errors


class PluginWithSpec:
    """Returns whatever it is given from the losses hook."""

    def __init__(self, *specs):
        self.specs = specs

    @hookimpl
    def ganzoo_losses(self):
        return list(self.specs)


# -- broken plugins -----------------------------------------------------------------------------
class WrongTypePlugin:
    @hookimpl
    def ganzoo_architectures(self):
        return [_loss("notanarch")]


class BadNamePlugin:
    @hookimpl
    def ganzoo_losses(self):
        return [_loss("Bad Name")]


class BadDataKindsPlugin:
    @hookimpl
    def ganzoo_architectures(self):
        return [_arch("voxel-gan", data_kinds=("voxels",))]


class BadDatasetKindPlugin:
    @hookimpl
    def ganzoo_datasets(self):
        return [DatasetSpec("cube", "3D cubes", kind="volume", load=lambda req: None)]


class NotAListPlugin:
    @hookimpl
    def ganzoo_architectures(self):
        return _arch("single")  # a spec, not a list of specs


class RaisingHookPlugin:
    @hookimpl
    def ganzoo_losses(self):
        raise RuntimeError("boom inside the hook")


class MisspelledHookPlugin:
    @hookimpl
    def ganzoo_architecture(self):  # missing the final 's'
        return [_arch("never")]


@pytest.mark.parametrize(
    "plugin, words",
    [
        (WrongTypePlugin(), ["expected ArchitectureSpec", "LossSpec"]),
        (BadNamePlugin(), ["'Bad Name'", "lower-case"]),
        (BadDataKindsPlugin(), ["voxel-gan", "data_kinds"]),
        (BadDatasetKindPlugin(), ["cube", "kind"]),
        (NotAListPlugin(), ["ganzoo_architectures()", "list of specs", "ArchitectureSpec"]),
        (RaisingHookPlugin(), ["boom inside the hook"]),
        (MisspelledHookPlugin(), ["invalid hooks", "ganzoo_architecture"]),
    ],
    ids=["wrong-type", "bad-name", "bad-data-kinds", "bad-dataset-kind", "not-a-list", "hook-raises", "misspelled-hook"],
)
def test_a_broken_plugin_is_recorded_and_the_others_still_load(reg, plugin, words):
    reg.register(LossPlugin("before"), "good1")
    rec = reg.register(plugin, "broken", Provider("broken", "broken-dist", "0.1"))
    reg.register(ArchPlugin(_arch("after")), "good2")
    assert rec.error is not None
    for w in words:
        assert w in rec.error
    assert reg.plugins["broken"].error == rec.error
    assert not reg.pm.is_registered(plugin)
    # nothing from the broken plugin is served; the good ones are
    assert reg.names("loss") == ["before"] and reg.names("architecture") == ["after"] and reg.names("dataset") == []
    (msg,) = reg.errors
    assert msg.startswith("plugin 'broken' (broken-dist 0.1)") and "\n" not in msg
    assert reg.plugins["good1"].error is None and reg.plugins["good2"].error is None


def test_misspelled_hook_is_caught_with_a_suggestion(reg):
    rec = reg.register(MisspelledHookPlugin(), "typo")
    assert "unknown hook 'ganzoo_architecture' (did you mean ganzoo_architectures?)" in rec.error
    assert reg.names("architecture") == []
    rec = reg.register(LossTypo(), "typo2")
    assert "unknown hook 'ganzoo_loss' (did you mean ganzoo_losses?)" in rec.error


class LossTypo:
    @hookimpl
    def ganzoo_loss(self):
        return [_loss("never")]


class ForgotDecorator:
    def ganzoo_losses(self):  # no @hookimpl
        return [_loss("never")]


class ForgotOne:
    @hookimpl
    def ganzoo_losses(self):
        return [_loss("served")]

    def ganzoo_penaltys(self):  # misspelled and undecorated
        return []


def test_a_forgotten_decorator_warns(reg, capsys):
    rec = reg.register(ForgotDecorator(), "forgot", Provider("forgot", "forgot-dist", "1"))
    assert rec.error is None and rec.hooks == []
    assert rec.warning == "implements no hook: did you forget @ganzoo.hookimpl? (it defines ganzoo_losses() without it)"
    assert reg.names("loss") == [] and reg.errors == []
    rec = reg.register(ForgotOne(), "forgot-one")
    assert reg.names("loss") == ["served"]
    assert "does not register ganzoo_penaltys() (did you mean ganzoo_penalties?)" in rec.warning
    reg.warn_errors()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("ganzoo: warning: plugin 'forgot' (forgot-dist 1) implements no hook")


def _pen(fn):
    from ganzoo import PenaltySpec

    return PenaltySpec("pen", "a penalty", fn)


@pytest.mark.parametrize(
    "spec, words",
    [
        (LossSpec("rel", "s", d_loss=lambda r, f: 0, g_loss=lambda f, r: 0),
         ["loss 'rel'", "the engine calls g_loss(fake_out)", "set g_uses_real=True"]),
        (LossSpec("rel", "s", d_loss=lambda r, f: 0, g_loss=lambda f: 0, g_uses_real=True),
         ["g_loss(fake_out, real_out)", "g_uses_real=True"]),
        (LossSpec("one", "s", d_loss=lambda r: 0, g_loss=lambda f: 0), ["d_loss(real_out, fake_out)"]),
        (_pen(lambda critic, real, fake: 0), ["penalty 'pen'", "fn(critic, real, fake, generator=...)", "add generator=None"]),
        (_pen(lambda critic, real: 0), ["fn(critic, real, fake, generator=...)"]),
        (ArchitectureSpec("a", "s", build=None, make_step=lambda hp: None), ["build and make_step must be callable"]),
        (ArchitectureSpec("a", "s", build=lambda info: {}, make_step=lambda hp: None), ["build(info, hp)"]),
        (ArchitectureSpec("a", "s", build=lambda i, h: {}, make_step=lambda: None), ["make_step(hp)"]),
        (ArchitectureSpec("a", "s", build=lambda i, h: {}, make_step=lambda hp: None, lr_factor=lambda s: 1.0),
         ["lr_factor(step, total_steps)"]),
        (ArchitectureSpec("a", "s", build=lambda i, h: {}, make_step=lambda hp: None, critic_constraint=lambda: True),
         ["critic_constraint(hp)"]),
        (DatasetSpec("d", "s", kind="image", load=lambda: None), ["load(request)"]),
    ],
    ids=["g_loss-2-args-no-flag", "flag-but-1-arg", "d_loss", "penalty-no-generator", "penalty-2-args", "build-none",
         "build-arity", "make_step", "lr_factor", "critic_constraint", "dataset-load"],
)
def test_callables_are_checked_against_how_the_engine_calls_them(reg, spec, words):
    rec = reg.register(SpecPlugin(spec), "bad")
    assert rec.error is not None and "returned an invalid spec" in rec.error
    for w in words:
        assert w in rec.error, rec.error
    assert not any(reg.names(k) for k in ("architecture", "loss", "penalty", "dataset"))


def test_callables_that_fit_pass(reg):
    from ganzoo import PenaltySpec

    class MakeStep:
        def __init__(self, hp, extra=1):
            pass

    specs = [LossSpec("rel", "s", d_loss=lambda r, f: 0, g_loss=lambda f, r=None: 0, g_uses_real=True),
             LossSpec("flex", "s", d_loss=lambda *a: 0, g_loss=lambda f, r=None: 0),
             PenaltySpec("p1", "s", lambda c, r, f, generator=None: 0),
             PenaltySpec("p2", "s", lambda c, r, f, **kw: 0),
             ArchitectureSpec("a", "s", build=lambda i, h: {}, make_step=MakeStep)]
    rec = reg.register(SpecPlugin(*specs), "good")
    assert rec.error is None and reg.names("loss") == ["flex", "rel"] and reg.names("penalty") == ["p1", "p2"]


class SpecPlugin:
    def __init__(self, *specs):
        self.specs = specs

    @hookimpl
    def ganzoo_losses(self):
        return [s for s in self.specs if isinstance(s, LossSpec)]

    @hookimpl
    def ganzoo_penalties(self):
        return [s for s in self.specs if type(s).__name__ == "PenaltySpec"]

    @hookimpl
    def ganzoo_architectures(self):
        return [s for s in self.specs if isinstance(s, ArchitectureSpec)]

    @hookimpl
    def ganzoo_datasets(self):
        return [s for s in self.specs if isinstance(s, DatasetSpec)]


def test_warn_errors_prints_each_error_once(reg, capsys):
    reg.register(BadNamePlugin(), "broken")
    reg.warn_errors()
    reg.warn_errors()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "plugin 'broken'" in err[0] and "ganzoo plugins" in err[0]


def test_strict_mode_raises_plugin_error(reg, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(PluginError) as info:
        reg.register(BadDataKindsPlugin(), "broken")
    assert isinstance(info.value, GanzooError)
    msg = str(info.value)
    assert "plugin 'broken'" in msg and "data_kinds" in msg and STRICT_ENV in msg and "\n" not in msg
    with pytest.raises(PluginError, match="duplicate loss 'x'"):
        reg.register(LossPlugin("x"), "a")
        reg.register(LossPlugin("x"), "b")
    with pytest.raises(PluginError, match="did you forget @ganzoo.hookimpl"):
        reg.register(ForgotDecorator(), "forgot")


def test_strict_mode_off_values(reg, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "0")
    rec = reg.register(BadNamePlugin(), "broken")
    assert rec.error


# -- entry points, allowlist --------------------------------------------------------------------
def _dist(root, dist, version, entry_points: dict[str, str], modules: dict[str, str]):
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{lines}")
    for mod, src in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(src))


_LOSS_MODULE = """
from ganzoo import LossSpec, hookimpl

@hookimpl
def ganzoo_losses():
    return [LossSpec({name!r}, "loss from an entry point", lambda r, f: 0.0, lambda f: 0.0)]
"""


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Three distributions on sys.path: two good, one whose module fails to import."""
    _dist(tmp_path, "alpha-dist", "1.2.3", {"alpha": "hA_reg_alpha"}, {"hA_reg_alpha": _LOSS_MODULE.format(name="alpha-loss")})
    _dist(tmp_path, "beta-dist", "2.0", {"beta": "hA_reg_beta"}, {"hA_reg_beta": _LOSS_MODULE.format(name="beta-loss")})
    _dist(tmp_path, "gamma-dist", "0.1", {"gamma": "hA_reg_gamma"}, {"hA_reg_gamma": "raise ImportError('gamma needs a missing library')\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in ("hA_reg_alpha", "hA_reg_beta", "hA_reg_gamma"):
        sys.modules.pop(mod, None)


def test_entry_points_load_with_distribution_and_version(reg, fake_dists):
    reg.load_entry_points(allow=["alpha", "beta-dist", "gamma"])
    assert set(reg.plugins) == {"alpha", "beta", "gamma"}
    a = reg.entry("loss", "alpha-loss").provider
    assert (a.plugin, a.dist, a.version) == ("alpha", "alpha-dist", "1.2.3")
    assert reg.entry("loss", "beta-loss").provider.dist == "beta-dist"
    gamma = reg.plugins["gamma"]
    assert gamma.provider.dist == "gamma-dist" and "ImportError: gamma needs a missing library" in gamma.error
    assert len(reg.errors) == 1


@pytest.mark.parametrize(
    "allow, expected",
    [("alpha", {"alpha"}), ("alpha, beta", {"alpha", "beta"}), ("beta-dist", {"beta"}), ("", set()), (" , ", set())],
)
def test_allowlist_env_loads_only_listed_entry_points(reg, fake_dists, monkeypatch, allow, expected):
    monkeypatch.setenv(ALLOW_ENV, allow)
    reg.load_entry_points()
    assert set(reg.plugins) == expected  # and none of the built-in plugins
    assert reg.errors == []


def test_strict_entry_point_import_failure_raises(reg, fake_dists, monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "yes")
    with pytest.raises(PluginError, match="plugin 'gamma' .*gamma needs a missing library"):
        reg.load_entry_points(allow=["gamma"])


def _load_two(reg, tmp_path, monkeypatch, ep_names, loss_names, versions=("1.0", "1.0")) -> None:
    """Entry points of one-dist and two-dist (each a loss module), loaded by distribution name."""
    mods = []
    for dist, ep, loss, version in zip(("one-dist", "two-dist"), ep_names, loss_names, versions):
        mod = f"hA_reg_{dist[:3]}_{ep}"
        mods.append(mod)
        _dist(tmp_path, dist, version, {ep: mod}, {mod: _LOSS_MODULE.format(name=loss)})
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg.load_entry_points(allow=["one-dist", "two-dist"])
    finally:
        for mod in mods:
            sys.modules.pop(mod, None)


def test_one_entry_point_name_in_two_distributions_loads_both(reg, tmp_path, monkeypatch):
    _load_two(reg, tmp_path, monkeypatch, ("shared", "shared"), ("one-loss", "two-loss"))
    assert reg.names("loss") == ["one-loss", "two-loss"] and not reg.errors
    assert len(reg.plugins) == 2 and all(r.error is None for r in reg.plugins.values())
    assert {r.provider.dist for r in reg.plugins.values()} == {"one-dist", "two-dist"}
    assert set(reg.plugins) == {"one-dist:shared", "two-dist:shared"}  # neither takes the bare name


# -- lookup and the timm-like facade ------------------------------------------------------------
@pytest.fixture
def zoo(reg):
    reg.register(ArchPlugin(_arch("vanilla"), _arch("wgan"), _arch("mlp"), _arch("cyclegan")), "zoo")
    return reg


def test_list_architectures_with_a_pattern(zoo):
    assert zoo.list_architectures() == ["cyclegan", "mlp", "vanilla", "wgan"]
    assert zoo.list_architectures("*an*") == ["cyclegan", "vanilla", "wgan"]
    assert zoo.list_architectures("*gan") == ["cyclegan", "wgan"]
    assert zoo.list_architectures("nothing*") == []


def test_create_builds_with_defaults_and_overrides(zoo):
    info = SimpleNamespace(kind="points")
    nets = zoo.create("mlp", info)
    assert nets["G"] == ("G", info, {"hidden": 32, "act": "relu"})
    nets = zoo.create("mlp", info, hidden="64", act="tanh")  # strings parse like CLI values
    assert nets["D"][2] == {"hidden": 64, "act": "tanh"}


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"hiden": 8}, ["unknown hyper-parameter of 'mlp' 'hiden'", "did you mean 'hidden'"]),
        ({"hidden": "wide"}, ["'hidden'", "int"]),
        ({"act": "gelu"}, ["'act'", "relu"]),
    ],
)
def test_create_rejects_bad_overrides(zoo, overrides, words):
    with pytest.raises(GanzooError) as info:
        zoo.create("mlp", SimpleNamespace(kind="points"), **overrides)
    for w in words:
        assert w in str(info.value)


def test_unknown_names_suggest_the_closest(zoo):
    with pytest.raises(GanzooError, match=r"unknown architecture 'vanila' \(did you mean 'vanilla'\?\)"):
        zoo.get("architecture", "vanila")
    with pytest.raises(GanzooError, match="unknown kind 'widgets'"):
        zoo.names("widgets")


def test_unknown_name_hints_at_failed_plugins(zoo):
    zoo.register(BadNamePlugin(), "broken")
    with pytest.raises(GanzooError, match="some plugins failed to load"):
        zoo.get("loss", "nope")


def test_kind_aliases(zoo):
    for word in ("architecture", "architectures", "arch"):
        assert zoo.names(word) == ["cyclegan", "mlp", "vanilla", "wgan"]
    zoo.register(LossPlugin("x"), "l")
    assert zoo.names("losses") == zoo.names("loss") == ["x"]


# -- entry points against the real built-ins (the ganzoo distribution's own 'datasets' plugin) -----
_RING8_MODULE = """
from ganzoo import DatasetSpec, hookimpl

@hookimpl
def ganzoo_datasets():
    return [DatasetSpec("ring8", "a replacement ring", kind="points", load=lambda request: None),
            DatasetSpec({extra!r}, "a new set", kind="points", load=lambda request: None)]
"""


@pytest.mark.parametrize("ep_name", ["aaa", "zzz"], ids=["sorted-before-the-builtin", "sorted-after-the-builtin"])
def test_an_entry_point_cannot_replace_a_builtin_spec(reg, tmp_path, monkeypatch, ep_name):
    mod = f"hA_reg_evil_{ep_name}"
    _dist(tmp_path, "evil-dist", "6.6", {ep_name: mod}, {mod: _RING8_MODULE.format(extra=f"{ep_name}-set")})
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg.load_entry_points(allow=["datasets", "evil-dist"])
    finally:
        sys.modules.pop(mod, None)
    ring = reg.entry("dataset", "ring8")
    assert ring.provider.dist == "ganzoo" and ring.provider.builtin and ring.provider.plugin == "datasets"
    assert "VEEGAN" in ring.spec.summary
    assert f"{ep_name}-set" in reg.names("dataset")
    assert reg.plugins["datasets"].error is None
    err = reg.plugins[ep_name].error
    assert "dataset 'ring8' is a built-in name of ganzoo" in err and "evil-dist 6.6 is refused" in err


def test_an_entry_point_named_like_a_builtin_never_renames_it(reg, tmp_path, monkeypatch):
    mod = "hA_reg_evil_datasets"
    _dist(tmp_path, "aaa-evil", "1.0", {"datasets": mod}, {mod: _RING8_MODULE.format(extra="evil-set")})
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg.load_entry_points(allow=["datasets", "aaa-evil"])
    finally:
        sys.modules.pop(mod, None)
    builtin = reg.plugins["datasets"]
    assert builtin.provider.dist == "ganzoo" and builtin.error is None and builtin.provider.builtin
    other = reg.plugins["aaa-evil:datasets"]
    assert other.provider.dist == "aaa-evil" and not other.provider.builtin
    assert "dataset 'ring8' is a built-in name" in other.error
    assert reg.entry("dataset", "ring8").provider.plugin == "datasets"
    assert reg.entry("dataset", "evil-set").provider.plugin == "aaa-evil:datasets"
    # the bare built-in name in the allowlist selects the built-in only
    reg2 = Registry()
    sys.modules.pop(mod, None)
    try:
        reg2.load_entry_points(allow=["datasets"])
    finally:
        sys.modules.pop(mod, None)
    assert set(reg2.plugins) == {"datasets"} and not reg2.errors
    reg3 = Registry()
    try:
        reg3.load_entry_points(allow=["aaa-evil:datasets"])
    finally:
        sys.modules.pop(mod, None)
    assert set(reg3.plugins) == {"aaa-evil:datasets"}


def test_two_distributions_with_one_spec_name_through_entry_points(reg, tmp_path, monkeypatch):
    _load_two(reg, tmp_path, monkeypatch, ("one", "two"), ("same-loss", "same-loss"), ("1.0", "2.0"))
    assert reg.names("loss") == []
    for name in ("one", "two"):
        assert "duplicate loss 'same-loss'" in reg.plugins[name].error
        assert "one-dist 1.0" in reg.plugins[name].error and "two-dist 2.0" in reg.plugins[name].error
