"""Which image size a run trains at: the data's own size by default, the architecture's preferred size
for data too small, mixed, too large or unbuildable, and whatever the user asks (ganzoo.engine.image_size)."""

from __future__ import annotations

import gzip
import struct
import tomllib

import numpy as np
import pytest
from PIL import Image

from ganzoo.engine.config import resolve
from ganzoo.registry import get_registry
from tests.conftest import invoke


def write_idx(folder, n=12, size=28, labels=True, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, n * size * size, dtype=np.uint8)
    data = struct.pack(">IIII", 2051, n, size, size) + pix.tobytes()
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    (folder / name).write_bytes(gzip.compress(data) if gz else data)
    if labels:
        (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes(i % 3 for i in range(n)))
    return folder


def write_folder(folder, sizes):
    for i, s in enumerate(sizes):
        d = folder / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (s, s) if isinstance(s, int) else s, (i * 20, 40, 90)).save(d / f"{i}.png")
    return folder


def size_of(arch, data, **run):
    reg = get_registry()
    cfg = resolve(reg, reg.get("architecture", arch), {"data": data, **run}, {})
    return cfg["image_size"], cfg.get("decisions", {}).get("image_size_why", "")


@pytest.mark.parametrize("gz", [False, True])
def test_idx_trains_dcgan_and_cgan_at_its_native_28(tmp_path, gz):
    d = write_idx(tmp_path / "mnist", gz=gz)
    for arch in ("dcgan", "cgan"):
        assert size_of(arch, f"idx:{d}") == (28, "28x28: the data's native size")


def test_small_data_gets_the_preferred_size_and_the_user_wins():
    assert size_of("dcgan", "digits") == (16, "16x16: dcgan's preferred size; the data's 8x8 is smaller")
    assert size_of("cgan", "digits", image_size=32) == (32, "32x32: set by you")
    assert size_of("cyclegan", "digits-unpaired")[0] == 8  # no preferred size: the data's own
    assert size_of("vanilla", "ring8") == (0, "")  # points have no size


def test_cifar10_is_32(tmp_path):
    assert size_of("dcgan", f"cifar10:{tmp_path}") == (32, "32x32: the data's native size")


def test_folders(tmp_path):
    same = write_folder(tmp_path / "same", [24] * 4)
    mixed = write_folder(tmp_path / "mixed", [24, 24, 30, 24])
    big = write_folder(tmp_path / "big", [160] * 2)
    wide = write_folder(tmp_path / "wide", [(40, 24)] * 2)
    assert size_of("dcgan", f"folder:{same}") == (24, "24x24: the data's native size")  # 6x6 base, 2 doublings
    size, why = size_of("dcgan", f"folder:{mixed}")
    assert size == 16 and "not all one size" in why
    size, why = size_of("dcgan", f"folder:{big}")
    assert size == 16 and "160x160 is over 128 px" in why and "--image-size 160" in why
    size, why = size_of("dcgan", f"folder:{wide}")
    assert size == 16 and "24x40, not square" in why
    # no preferred size: the loader's default (64 for folders) rather than the 160 px originals
    size, why = size_of("vanilla", f"folder:{big}")
    assert size == 0 and why.startswith("the data loader's default size")
    assert size_of("cyclegan", f"unpaired:{tmp_path / 'nothing'}")[0] == 0  # bad path: left to the loader's error


def test_a_size_the_networks_cannot_build_falls_back(tmp_path):
    d = write_idx(tmp_path / "odd", size=36)  # 36 = 9 * 2^2: a 9x9 base is over conv_plan's 8
    size, why = size_of("dcgan", f"idx:{d}")
    assert size == 16 and "dcgan cannot build the data's 36x36" in why and "b*2^k" in why
    assert size_of("vanilla", f"idx:{d}")[0] == 36  # an MLP builds any size


def test_cli_trains_dcgan_at_28_and_says_why(tmp_path):
    d = write_idx(tmp_path / "mnist")
    r = invoke("train", "dcgan", "--data", f"idx:{d}", "--steps", "1", "--batch-size", "4", "--ngf", "8", "--ndf", "8",
               "--out", tmp_path / "run")
    assert r.code == 0, r.err
    assert r.lines[0].startswith(f"dcgan on idx:{d}, 28x28 (the data's native size), cpu, "), r.lines[0]
    cfg = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert cfg["image_size"] == 28 and cfg["decisions"]["image_size_why"] == "28x28: the data's native size"
    from PIL import Image as _I

    with _I.open(tmp_path / "run" / "samples" / "step_000001.png") as img:  # an 8x8 grid of 28 px samples
        assert img.size[0] > 8 * 28


def test_info_states_the_rule_and_the_default_datas_size():
    r = invoke("info", "dcgan")
    assert r.code == 0
    assert "image size:     the data's own size when all its images share one square size of 16 to 128 px" in r.out
    assert "with --data digits: 16x16: dcgan's preferred size; the data's 8x8 is smaller" in r.out
    r = invoke("info", "cgan", "--json")
    import json

    assert json.loads(r.out)["image_size"]["default_data_size"] == 16


def test_cli_first_line_names_the_loader_default_for_mixed_folders(tmp_path):
    mixed = write_folder(tmp_path / "mixed", [20, 24, 30])
    r = invoke("train", "vanilla", "--data", f"folder:{mixed}", "--steps", "1", "--batch-size", "4",
               "--set", "hidden=8", "--set", "layers=1", "--out", tmp_path / "run")
    assert r.code == 0, r.err
    assert r.lines[0].startswith(f"vanilla on folder:{mixed}, 64x64 (the data loader's default size; the data's images "
                                 "are not all one size"), r.lines[0]
