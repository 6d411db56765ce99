"""The plugin authors' test kit (``ganzoo.testing``) run against every built-in plugin, its pytest
fixtures, and the public data helpers a data plugin builds on. (The example plugin's own tests use the
kit through the installed package: tests/test_third_party.py.)"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import DatasetSpec, GanzooError, LossSpec, hookimpl
from ganzoo.api import DataRequest, convert_channels, dataset_from_arrays, images_from_array, square_resize
from ganzoo.registry import Registry
from ganzoo.testing import check_architecture, check_dataset, check_loss, check_penalty

REG = Registry()
REG.load_entry_points(allow=None)
BUILTIN = [e for k in ("architecture", "loss", "penalty", "dataset") for e in REG.entries(k) if e.provider.builtin]


def builtin(kind: str) -> list[str]:
    return [e.name for e in BUILTIN if e.kind == kind]


def test_every_builtin_plugin_is_covered():
    assert {"vanilla", "dcgan", "wgan", "cgan", "cyclegan"} <= set(builtin("architecture"))
    assert set(builtin("dataset")) == {"ring8", "grid25", "digits", "digits-unpaired", "idx", "folder", "cifar10", "unpaired"}


@pytest.mark.parametrize("name", builtin("architecture"))
def test_kit_on_builtin_architecture(name, tmp_path):
    # every loss x penalty pair runs through the same kit code in tests/test_zoo.py (kit.check_pair)
    report = check_architecture(name, registry=REG, workdir=tmp_path, pairs=False)
    spec = REG.get("architecture", name)
    assert report["kinds"] == list(spec.data_kinds)
    assert len(report["exported"]) == len(spec.exports) * len(spec.data_kinds)
    assert report["bad_inputs"] >= 1 + sum(h.type in (int, float, bool) for h in spec.hparams)


@pytest.mark.parametrize("name", builtin("loss"))
def test_kit_on_builtin_loss(name, tmp_path):
    report = check_loss(name, registry=REG, workdir=tmp_path)
    assert set(report["trained"]) | set(report["refused"]) == set(REG.names("architecture"))
    if name == "wgan":  # needs a Lipschitz critic: refused by the architectures without one
        assert "vanilla" in report["refused"] and "wgan" in report["trained"]
    else:
        assert not report["refused"], report["refused"]


@pytest.mark.parametrize("name", builtin("penalty"))
def test_kit_on_builtin_penalty(name, tmp_path):
    report = check_penalty(name, registry=REG, workdir=tmp_path)
    assert "vanilla" in report["trained"]
    if name == "gp":  # per sample: the BatchNorm critics refuse it
        assert set(report["refused"]) == {"dcgan", "cgan"}


def _files(kind: str, root) -> str:
    """A tiny set on disk in the layout of each built-in file format."""
    if kind == "idx":
        n, size = 12, 6
        (root / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, size, size)
                                                       + (np.arange(n * size * size) % 256).astype(np.uint8).tobytes())
        (root / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(i % 3 for i in range(n)))
        return f"idx:{root}"
    if kind == "cifar10":
        import pickle

        data = (np.arange(6 * 3072) % 256).astype(np.uint8).reshape(6, 3072)
        (root / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1, 2, 0, 1, 2]}, protocol=2))
        return f"cifar10:{root}"
    rng = np.random.default_rng(0)
    folders = {"folder": ["cats", "dogs"], "unpaired": ["trainA", "trainB"]}[kind]
    for sub in folders:
        (root / sub).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(root / sub / f"{i}.png")
    return f"{kind}:{root}"


@pytest.mark.parametrize("name", builtin("dataset"))
def test_kit_on_builtin_dataset(name, tmp_path):
    spec = REG.get("dataset", name)
    text = name
    if spec.takes_path:
        (tmp_path / "files").mkdir()
        text = _files(name, tmp_path / "files")
    report = check_dataset(text, registry=REG, workdir=tmp_path / "work")
    assert report["kind"] == spec.kind and report["trained"]
    if spec.takes_path:
        assert report["empty_folder"]


# -- the kit fails where it should ----------------------------------------------------------------------
class Broken:
    @hookimpl
    def ganzoo_losses(self):
        return [LossSpec("nan-loss", "returns nan", lambda r, f: (r - f).mean() * float("nan"), lambda f: f.mean()),
                LossSpec("no-grad", "gives G no gradient", lambda r, f: (f - r).mean(), lambda f: f.detach().mean() * 0)]

    @hookimpl
    def ganzoo_datasets(self):
        def wrong_layout(request):
            from ganzoo.api import DataInfo, Dataset

            x = torch.zeros(4, 8, 8, 1, dtype=torch.uint8)  # NHWC, not NCHW
            return Dataset(DataInfo("image", "wrong", channels=1, height=8, width=8), x=x)

        def crashes(request):
            raise FileNotFoundError(request.path)

        return [DatasetSpec("wrong-layout", "NHWC by mistake", kind="image", load=wrong_layout),
                DatasetSpec("crashes", "a traceback on bad paths", kind="image", load=crashes, takes_path=True)]


@pytest.fixture
def broken_reg():
    reg = Registry()
    reg.load_entry_points(allow=["vanilla", "losses", "datasets"])
    reg.register(Broken(), "broken-test")
    return reg


def test_the_kit_catches_broken_plugins(broken_reg, tmp_path):
    with pytest.raises(AssertionError, match="nan-loss: d_loss = nan"):
        check_loss("nan-loss", registry=broken_reg)
    with pytest.raises(AssertionError, match="no-grad: g_loss gives the generator no gradient"):
        check_loss("no-grad", registry=broken_reg)
    with pytest.raises(GanzooError, match="data set plugin 'wrong-layout' returned images of shape \\[4, 8, 8, 1\\]"):
        check_dataset("wrong-layout", registry=broken_reg)
    with pytest.raises(AssertionError, match="raised FileNotFoundError.*raise ganzoo.GanzooError with one line"):
        check_dataset(f"crashes:{tmp_path}", registry=broken_reg, train=False)


# -- pytest fixtures from the pytest11 entry point ---------------------------------------------------------
def test_fixtures_register_a_plugin_for_the_cli(ganzoo_register, ganzoo_cli):
    class Sq:
        @hookimpl
        def ganzoo_losses(self):
            return [LossSpec("sq-test", "squares", lambda r, f: ((r - 1) ** 2).mean() + (f ** 2).mean(),
                             lambda f: ((f - 1) ** 2).mean())]

    rec = ganzoo_register(Sq(), "sq-plugin")
    assert rec.error is None and rec.warning is None
    r = ganzoo_cli("list", "losses")
    assert r.code == 0 and "sq-test" in r.out
    assert check_loss("sq-test", architectures=["vanilla"])["trained"] == ["vanilla"]  # the kit sees it too


def test_the_registry_fixture_is_restored(ganzoo_cli):
    assert "sq-test" not in ganzoo_cli("list", "losses").out


# -- public data helpers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layout,shape", [("NHW", (5, 6, 7)), ("NHWC", (5, 6, 7, 3)), ("NCHW", (5, 3, 6, 7)),
                                          ("NHWC", (5, 6, 7, 1))])
def test_images_from_array_layouts(layout, shape):
    arr = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    for given in ("auto", layout):
        x = images_from_array(arr, layout=given)
        assert x.dtype == torch.uint8 and x.shape[0] == 5 and x.shape[2:] == (6, 7)
        ref = arr[:, None] if layout == "NHW" else arr.transpose(0, 3, 1, 2) if layout == "NHWC" else arr
        assert np.array_equal(x.numpy(), ref)


def test_images_from_array_refuses_with_one_line():
    with pytest.raises(GanzooError, match="expected uint8 pixels.*float32"):
        images_from_array(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(GanzooError, match="ambiguous; pass layout"):
        images_from_array(np.zeros((2, 3, 3, 3), np.uint8))
    with pytest.raises(GanzooError, match="1 or 3 channels, got 4"):
        images_from_array(np.zeros((2, 4, 8, 8), np.uint8), layout="NCHW")


def test_dataset_from_arrays_applies_the_request_and_passes_the_kit(tmp_path):
    rng = np.random.default_rng(1)
    imgs, labels = rng.integers(0, 255, (20, 10, 14, 3), dtype=np.uint8), np.arange(20) % 4
    ds = dataset_from_arrays(imgs, labels, name="npz", request=DataRequest("npz", image_size=8, channels=1))
    assert ds.x.shape == (20, 1, 8, 8) and ds.info.num_classes == 4 and ds.info.class_names == ("0", "1", "2", "3")
    # the same pixels as cropping and resizing by hand, then the luma conversion
    want = convert_channels(square_resize(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), 8), 1)
    assert torch.equal(ds.x, want)
    un = dataset_from_arrays(imgs[:10], name="two", images_b=imgs[10:], request=DataRequest("two", image_size=8))
    assert un.info.kind == "unpaired" and un.x_b.shape == (10, 3, 8, 8)
    with pytest.raises(GanzooError, match="3 labels for 20 images"):
        dataset_from_arrays(imgs, [0, 1, 2], name="npz")
    spec = DatasetSpec("npz-test", "arrays", kind="image", labelled=True,
                       load=lambda request: dataset_from_arrays(imgs, labels, name="npz-test", request=request))
    assert check_dataset(spec, registry=REG, workdir=tmp_path)["trained"] == "vanilla"


def test_the_data_plugin_example_of_data_md_works(tmp_path, ganzoo_register):
    """docs/data.md's npz plugin, executed as written, registered and put through the kit."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def load_npz" in b]
    module = type(re)("npz_example")
    exec(compile(block, "docs/data.md", "exec"), module.__dict__)
    assert ganzoo_register(module, "npz-example").error is None
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", images=rng.integers(0, 255, (12, 9, 9), dtype=np.uint8), labels=np.arange(12) % 3)
    report = check_dataset(f"npz:{tmp_path}", workdir=tmp_path / "work")
    assert report["samples"] == 12 and report["info"].num_classes == 3 and report["trained"] == "vanilla"
    assert "cannot read" in report["empty_folder"] and "train.npz" in report["empty_folder"]
