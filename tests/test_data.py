"""The built-in data plugin (``ganzoo_plugins.data``): embedded sets and on-disk formats.

Every on-disk fixture is generated in ``tmp_path``; nothing is downloaded.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import GanzooError
from ganzoo.api import DataRequest, Dataset
from ganzoo_plugins.data import ganzoo_datasets

SPECS = {s.name: s for s in ganzoo_datasets()}


def load(name: str, path=None, **kw) -> Dataset:
    return SPECS[name].load(DataRequest(name=name, path=None if path is None else str(path), **kw))


def test_specs_registered():
    assert set(SPECS) == {"ring8", "grid25", "digits", "digits-unpaired", "idx", "folder", "cifar10", "unpaired"}
    assert {n for n, s in SPECS.items() if s.takes_path} == {"idx", "folder", "cifar10", "unpaired"}
    assert SPECS["ring8"].kind == "points" and SPECS["digits-unpaired"].kind == "unpaired"
    assert SPECS["unpaired"].kind == "unpaired" and SPECS["digits"].labelled


# --- 2D mixtures ------------------------------------------------------------------------------


def test_ring8_modes_and_spread():
    ds = load("ring8", seed=3)
    assert ds.info.kind == "points" and ds.info.dim == 2 and ds.info.sample_shape == (2,)
    assert ds.x.dtype == torch.float32 and ds.x.shape[1] == 2 and len(ds) >= 10_000
    assert ds.sigma == pytest.approx(0.01) and ds.modes.shape == (8, 2)
    expected = torch.tensor([[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)])
    assert torch.allclose(ds.modes, expected, atol=1e-6)
    assert torch.allclose(ds.modes.norm(dim=1), torch.ones(8), atol=1e-6)
    # no two modes coincide (the linspace(0, 2*pi, 8) bug puts modes 0 and 7 together)
    dist = torch.cdist(ds.modes, ds.modes) + torch.eye(8) * 10
    assert dist.min() > 0.7
    # every sample belongs to its nearest mode with the right spread; all modes are used
    nearest = torch.cdist(ds.x, ds.modes).argmin(1)
    resid = ds.x - ds.modes[nearest]
    assert resid.std().item() == pytest.approx(0.01, rel=0.05)
    counts = torch.bincount(nearest, minlength=8).float() / len(ds)
    assert (counts - 1 / 8).abs().max() < 0.02


def test_ring8_seeded():
    assert torch.equal(load("ring8", seed=1).x, load("ring8", seed=1).x)
    assert not torch.equal(load("ring8", seed=1).x, load("ring8", seed=2).x)


def test_grid25_modes():
    ds = load("grid25")
    vals = [-4.0, -2.0, 0.0, 2.0, 4.0]
    want = {(a, b) for a in vals for b in vals}
    assert ds.modes.shape == (25, 2) and {tuple(m.tolist()) for m in ds.modes} == want
    assert ds.sigma == pytest.approx(0.05)
    resid = ds.x - ds.modes[torch.cdist(ds.x, ds.modes).argmin(1)]
    assert resid.std().item() == pytest.approx(0.05, rel=0.05)


# --- scikit-learn digits ------------------------------------------------------------------------


def test_digits_native():
    ds = load("digits")
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.uint8
    assert ds.x.max() == 255 and ds.x.min() == 0
    assert ds.y.dtype == torch.int64 and set(ds.y.tolist()) == set(range(10))
    i = ds.info
    assert (i.kind, i.channels, i.height, i.width, i.num_classes) == ("image", 1, 8, 8, 10)
    assert i.class_names == tuple(str(k) for k in range(10))
    batch = ds.get(torch.arange(4))
    assert batch.real.dtype == torch.float32 and batch.real.min() >= -1 and batch.real.max() <= 1


@pytest.mark.parametrize("size", [16, 32])
def test_digits_resized(size):
    ds = load("digits", image_size=size, channels=3)
    assert ds.x.shape == (1797, 3, size, size)
    assert (ds.info.height, ds.info.width, ds.info.channels) == (size, size, 3)
    # upsampling keeps the picture: mean brightness close to the native one
    native = load("digits").x.float().mean()
    assert abs(ds.x.float().mean() - native) < 8


def test_digits_unpaired_invert_and_disjoint():
    ds = load("digits-unpaired", image_size=16)
    assert ds.info.kind == "unpaired" and ds.extra["mapping"] == "invert"
    assert ds.x.shape[1:] == (1, 16, 16) and ds.x_b.shape[1:] == (1, 16, 16)
    assert len(ds) + ds.len_b == 1797 and abs(len(ds) - ds.len_b) <= 1
    assert ds.y is not None and ds.y_b is not None
    # B is the inverse of digits that are *not* in A: inverting B back gives images disjoint from A
    digits = load("digits", image_size=16).x.flatten(1)
    back = (255 - ds.x_b).flatten(1)
    key = lambda t: {bytes(r.numpy()) for r in t}  # noqa: E731
    a_keys, b_keys, all_keys = key(ds.x.flatten(1)), key(back), key(digits)
    assert b_keys <= all_keys and a_keys <= all_keys
    assert len(a_keys & b_keys) < 5  # disjoint halves: only duplicate images could coincide
    # the ground-truth translation of A is 255 - A (a dark-background image becomes light)
    assert ds.x.float().mean() < 128 < ds.x_b.float().mean()
    assert torch.equal(load("digits-unpaired", image_size=16).x, ds.x)  # fixed split


# --- IDX ----------------------------------------------------------------------------------------


def idx_images(n=5, rows=6, cols=6, magic=2051) -> bytes:
    pix = (np.arange(n * rows * cols) % 256).astype(np.uint8)
    return struct.pack(">IIII", magic, n, rows, cols) + pix.tobytes()


def idx_labels(n=5, magic=2049) -> bytes:
    return struct.pack(">II", magic, n) + bytes(i % 10 for i in range(n))


def write(path, data: bytes, gz=False):
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_idx_raw_and_gz(tmp_path, gz):
    sfx = ".gz" if gz else ""
    write(tmp_path / f"train-images-idx3-ubyte{sfx}", idx_images(), gz)
    write(tmp_path / f"train-labels-idx1-ubyte{sfx}", idx_labels(), gz)
    ds = load("idx", tmp_path)
    assert ds.x.shape == (5, 1, 6, 6) and ds.x.dtype == torch.uint8
    assert ds.x.flatten().tolist()[:3] == [0, 1, 2]
    assert ds.y.tolist() == [0, 1, 2, 3, 4] and ds.info.class_names == ("0", "1", "2", "3", "4")
    ds = load("idx", tmp_path / f"train-images-idx3-ubyte{sfx}", image_size=12)  # the file itself
    assert ds.x.shape == (5, 1, 12, 12) and ds.y is not None


def test_idx_without_labels(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte", idx_images())
    ds = load("idx", tmp_path)
    assert ds.y is None and ds.info.num_classes == 0


def test_idx_wrong_magic(tmp_path):
    f = write(tmp_path / "train-images-idx3-ubyte", idx_images(magic=1234))
    with pytest.raises(GanzooError, match=r"wrong magic number 1234 .*train-images-idx3-ubyte.*expected 2051"):
        load("idx", tmp_path)
    write(f, idx_labels())  # a labels file where the images should be
    with pytest.raises(GanzooError, match="2049.*labels file"):
        load("idx", tmp_path)


def test_idx_truncated(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_images()[:-10], gz=True)
    with pytest.raises(GanzooError, match=r"truncated .*expected 196 bytes\), found 186"):
        load("idx", tmp_path)


def test_idx_label_mismatch(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte", idx_images(n=5))
    write(tmp_path / "train-labels-idx1-ubyte", idx_labels(n=4))
    with pytest.raises(GanzooError, match="4 labels but .* 5 images"):
        load("idx", tmp_path)


def test_idx_missing(tmp_path):
    with pytest.raises(GanzooError, match="does not exist"):
        load("idx", tmp_path / "nope")
    with pytest.raises(GanzooError, match="no IDX image file .*train-images-idx3-ubyte"):
        load("idx", tmp_path)
    with pytest.raises(GanzooError, match="needs a path"):
        load("idx")


# --- image folders ------------------------------------------------------------------------------


def png(path, color, size=(10, 7), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_folder_classes(tmp_path):
    png(tmp_path / "cats" / "a.png", (255, 0, 0))
    png(tmp_path / "cats" / "b.jpg", (250, 0, 0))
    png(tmp_path / "dogs" / "c.png", 40, mode="L")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    ds = load("folder", tmp_path, image_size=8)
    assert ds.x.shape == (3, 3, 8, 8) and ds.x.dtype == torch.uint8
    assert ds.y.tolist() == [0, 0, 1] and ds.info.class_names == ("cats", "dogs")
    assert ds.x[0, 0].float().mean() > 240 and ds.x[0, 1].float().mean() < 10
    assert load("folder", tmp_path).x.shape[-1] == 64  # default size
    assert load("folder", tmp_path, image_size=8, channels=1).x.shape == (3, 1, 8, 8)


def test_folder_unreadable_and_empty(tmp_path):
    png(tmp_path / "a" / "ok.png", (0, 0, 0))
    (tmp_path / "a" / "broken.png").write_bytes(b"not really a png")
    with pytest.raises(GanzooError, match=r"1 of 2 image files cannot be read: .*broken\.png \(cannot identify"):
        load("folder", tmp_path, image_size=8)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(GanzooError, match="no images"):
        load("folder", tmp_path / "empty")
    with pytest.raises(GanzooError, match="does not exist"):
        load("folder", tmp_path / "missing")


# --- CIFAR-10 -----------------------------------------------------------------------------------


def cifar_batch(path, n=4, offset=0):
    data = ((np.arange(n * 3072) + offset) % 256).astype(np.uint8).reshape(n, 3072)
    d = {b"batch_label": b"training batch", b"labels": [i % 10 for i in range(n)], b"data": data,
         b"filenames": [b"x.png"] * n}
    path.write_bytes(pickle.dumps(d, protocol=2))


def py2_cifar_pickle(data: np.ndarray, labels) -> bytes:
    """A batch pickled the way the real (Python 2, numpy 1.x) CIFAR-10 files are, opcode by opcode."""

    def s(b: bytes) -> bytes:  # SHORT_BINSTRING
        return b"U" + bytes([len(b)]) + b

    raw = data.tobytes()
    out = b"\x80\x02}(" + s(b"data")
    out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
    out += b"(K\x01M" + struct.pack("<H", data.shape[0]) + b"M" + struct.pack("<H", data.shape[1]) + b"\x86"
    out += b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
    out += b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    out += b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb"
    out += s(b"labels") + b"](" + b"".join(b"K" + bytes([v]) for v in labels) + b"eu."
    return out


def test_cifar10(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    data = (np.arange(4 * 3072) % 256).astype(np.uint8).reshape(4, 3072)
    (root / "data_batch_1").write_bytes(py2_cifar_pickle(data, [0, 1, 2, 3]))
    cifar_batch(root / "data_batch_2", n=3)
    meta = {b"label_names": [n.encode() for n in "abcdefghij"], b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    for p in (root, tmp_path):  # the batches folder or its parent
        ds = load("cifar10", p)
        assert ds.x.shape == (7, 3, 32, 32) and ds.x.dtype == torch.uint8
        assert ds.y.tolist() == [0, 1, 2, 3, 0, 1, 2]
        assert ds.info.class_names == tuple("abcdefghij") and ds.info.num_classes == 10
    assert ds.x[0, 0, 0, :3].tolist() == [0, 1, 2]  # channel-major rows, as CIFAR stores them
    assert load("cifar10", root, image_size=16).x.shape == (7, 3, 16, 16)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_cifar10_malicious_pickle_refused(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    with pytest.raises(GanzooError, match=r"refusing to load .*data_batch_1.*(posix|os|nt)\.system"):
        load("cifar10", tmp_path)


def test_cifar10_missing(tmp_path):
    with pytest.raises(GanzooError, match="no data_batch_1"):
        load("cifar10", tmp_path)
    (tmp_path / "data_batch_1").write_bytes(b"\x80\x02garbage")
    with pytest.raises(GanzooError, match="cannot read CIFAR-10 batch .*data_batch_1"):
        load("cifar10", tmp_path)


# --- CycleGAN layout ----------------------------------------------------------------------------


def test_unpaired_layout(tmp_path):
    png(tmp_path / "trainA" / "1.png", (255, 255, 255))
    png(tmp_path / "trainA" / "2.png", (200, 200, 200))
    png(tmp_path / "trainB" / "1.jpg", (0, 0, 255))
    png(tmp_path / "testA" / "9.png", (1, 2, 3))
    ds = load("unpaired", tmp_path, image_size=16)
    assert ds.info.kind == "unpaired" and ds.info.channels == 3 and ds.info.height == 16
    assert ds.x.shape == (2, 3, 16, 16) and ds.x_b.shape == (1, 3, 16, 16)
    assert ds.y is None and ds.y_b is None
    b = ds.get(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert b.real.shape == (2, 3, 16, 16) and b.real_b.shape == (2, 3, 16, 16)
    assert load("unpaired", tmp_path).x.shape[-1] == 64


def test_unpaired_missing_domain(tmp_path):
    png(tmp_path / "trainA" / "1.png", (255, 255, 255))
    with pytest.raises(GanzooError, match="missing folder .*trainB"):
        load("unpaired", tmp_path)
    (tmp_path / "trainB").mkdir()
    with pytest.raises(GanzooError, match="trainB holds no images"):
        load("unpaired", tmp_path)
