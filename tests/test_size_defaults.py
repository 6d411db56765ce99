"""An architecture's defaults for one image size (``ArchitectureSpec.size_defaults``): they apply
once the run's size is chosen, only to what nothing above the architecture's defaults set."""

from __future__ import annotations

import dataclasses

import pytest

from ganzoo import hookimpl
from ganzoo.engine.config import resolve
from ganzoo.errors import GanzooError
from ganzoo.registry import get_registry
from tests.test_image_size import write_idx


def dcgan_with(size_defaults):
    return dataclasses.replace(get_registry().get("architecture", "dcgan"), size_defaults=size_defaults)


def cfg_of(arch, data, run=None, hps=None):
    return resolve(get_registry(), arch, {"data": data, **(run or {})}, hps or {})


PER_SIZE = {28: {"steps": 777, "n_critic": 2, "ngf": 12}}


def test_they_apply_at_their_size_only(tmp_path):
    arch = dcgan_with(PER_SIZE)
    at28 = cfg_of(arch, f"idx:{write_idx(tmp_path / 'm')}")
    assert (at28["image_size"], at28["steps"], at28["n_critic"], at28["hparams"]["ngf"]) == (28, 777, 2, 12)
    assert at28["decisions"]["size_defaults"] == "dcgan's defaults at 28x28: steps=777, n_critic=2, ngf=12"
    at16 = cfg_of(arch, "digits")  # the 8x8 digits train at dcgan's preferred 16 px
    assert (at16["image_size"], at16["steps"], at16["n_critic"], at16["hparams"]["ngf"]) == (16, 5000, 1, 64)
    assert "size_defaults" not in at16.get("decisions", {})
    asked = cfg_of(arch, "digits", {"image_size": 28})  # a size the user asks for counts too
    assert asked["steps"] == 777


def test_the_user_a_variant_and_a_loss_suggestion_win(tmp_path):
    arch = dcgan_with(PER_SIZE)
    data = f"idx:{write_idx(tmp_path / 'm')}"
    mine = cfg_of(arch, data, {"steps": 5}, {"ngf": 8})
    assert (mine["steps"], mine["hparams"]["ngf"], mine["n_critic"]) == (5, 8, 2)
    assert mine["decisions"]["size_defaults"] == "dcgan's defaults at 28x28: n_critic=2"
    # the wgan-gp variant picks the wgan loss, whose suggestion n_critic=5 sits above size_defaults
    variant = cfg_of(arch, data, {"variant": "wgan-gp"})
    assert (variant["loss"], variant["n_critic"], variant["steps"]) == ("wgan", 5, 777)
    everything = cfg_of(arch, data, {"steps": 5, "n_critic": 1}, {"ngf": 8})
    assert "size_defaults" not in everything.get("decisions", {})


@pytest.mark.parametrize("key", ["image_size", "loss", "data"])
def test_a_key_chosen_before_the_size_is_refused(tmp_path, key):
    arch = dcgan_with({28: {key: {"image_size": 32, "loss": "ns", "data": "digits"}[key]}})
    with pytest.raises(GanzooError, match=rf"size_defaults\[28\] of 'dcgan': '{key}' cannot depend on the image size"):
        cfg_of(arch, f"idx:{write_idx(tmp_path / 'm')}")


def test_an_unknown_key_names_the_source(tmp_path):
    arch = dcgan_with({28: {"stepz": 10}})
    with pytest.raises(GanzooError, match=r"size_defaults\[28\] of 'dcgan':.*unknown key 'stepz'.*did you mean 'steps'"):
        cfg_of(arch, f"idx:{write_idx(tmp_path / 'm')}")


def test_dcgan_trains_mnist_size_data_longer_and_says_so(tmp_path):
    from types import SimpleNamespace

    from ganzoo.cli.train import header_line
    from tests.conftest import invoke

    dcgan = get_registry().get("architecture", "dcgan")
    cfg = cfg_of(dcgan, f"idx:{write_idx(tmp_path / 'm')}")
    assert (cfg["image_size"], cfg["steps"]) == (28, 12000)
    assert cfg_of(dcgan, "digits")["steps"] == 5000
    info = SimpleNamespace(kind="image", height=28, width=28)
    trainer = SimpleNamespace(cfg=cfg, start_step=0, p=SimpleNamespace(
        spec=dcgan, dataset=SimpleNamespace(info=info), device=SimpleNamespace(type="cpu")))
    assert header_line(trainer).endswith("steps 0 -> 12000 (dcgan's defaults at 28x28: steps=12000)")
    r = invoke("info", "dcgan")
    assert r.code == 0 and "at 28x28 px:    steps=12000" in r.out
    r = invoke("train", "dcgan", "--help")
    assert "At 28x28 px: steps 12000." in " ".join(r.out.split())


@pytest.mark.parametrize("bad, fragment", [
    ({28: {"lr_g": "abc"}}, "size_defaults[28] of 'dcgan': lr_g: expected a number"),
    ({"28": {"steps": 9}}, "size_defaults['28'] of 'dcgan': expected a positive image side in px"),
    ({32: {"loss": "ns"}}, "size_defaults[32] of 'dcgan': 'loss' cannot depend on the image size"),
])
def test_a_broken_entry_is_one_line_at_any_size_and_in_info(bad, fragment):
    from ganzoo.registry import Registry, set_registry
    from tests.conftest import assert_user_error, invoke

    arch = dcgan_with(bad)
    with pytest.raises(GanzooError) as err:
        cfg_of(arch, "digits")  # trains at 16 px: the broken entry is for another size
    assert fragment in str(err.value)

    class Broken:
        @hookimpl
        def ganzoo_architectures(self):
            return [dataclasses.replace(arch, name="broken-sizes")]

    reg = Registry()
    reg.load_entry_points()
    reg.register(Broken(), "broken-test")
    previous = set_registry(reg)
    try:
        assert_user_error(invoke("info", "broken-sizes"), fragment.replace("'dcgan'", "'broken-sizes'"))
    finally:
        set_registry(previous)
