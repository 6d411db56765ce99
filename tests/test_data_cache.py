"""The decoded data cache, parallel decoding and bad files, flat folders, --channels, ``ganzoo cache``.

Every test has its own ``$GANZOO_CACHE`` (the autouse fixture in conftest.py); fixtures are tiny
images generated in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import GanzooError, hookimpl
from ganzoo.api import DatasetSpec, DataRequest, Dataset, DataInfo, cache_dir, cached_array, load_image_files
from ganzoo.data.resolve import load_dataset
from ganzoo.engine.build import open_run
from ganzoo.registry import Registry
from ganzoo_plugins.data import ganzoo_datasets

from conftest import assert_user_error

SPECS = {s.name: s for s in ganzoo_datasets()}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test here counts cache entries: give it an empty cache folder of its own."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo-cache"))


def load(name, path, **kw) -> Dataset:
    return SPECS[name].load(DataRequest(name=name, path=str(path), progress=False, **kw))


def picture(path, seed, size=(12, 10)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def flat(folder, n=6):
    for i in range(n):
        picture(folder / f"img_{i:02d}.png", i)
    return folder


def entries(folder=None):
    folder = folder or cache_dir()
    return sorted(p.name for p in folder.glob("*.npy"))


def test_miss_then_hit_gives_the_pixels_of_an_uncached_load(tmp_path, monkeypatch):
    data = flat(tmp_path / "faces")
    uncached = load("folder", data, image_size=8, cache=False)
    assert entries() == []  # the cache was not touched

    first = load("folder", data, image_size=8)
    assert len(entries()) == 1
    import ganzoo.data.files as files

    def no_decoding(*a, **k):
        raise AssertionError("a cache hit decoded the images again")

    monkeypatch.setattr(files, "decode_images", no_decoding)
    second = load("folder", data, image_size=8)
    for ds in (first, second):
        assert ds.x.dtype == torch.uint8 and ds.x.shape == (6, 3, 8, 8)
        assert torch.equal(ds.x, uncached.x)
    # the hit is a memory map of the cache file, not a copy
    npy = cache_dir() / entries()[0]
    mapped = np.load(npy, mmap_mode="r")
    assert np.array_equal(mapped, second.x.numpy())
    assert second.info.native_sizes == ((10, 12),)
    side = json.loads(npy.with_suffix(".json").read_text())
    assert side["description"]["size"] == 8 and side["description"]["channels"] == 3
    assert len(side["sources"]) == 6 and {"ganzoo_version", "shape", "created"} <= set(side)


def test_a_changed_file_rebuilds_and_drops_the_stale_entry(tmp_path):
    data = flat(tmp_path / "faces")
    before = load("folder", data, image_size=8)
    old = entries()
    picture(data / "img_03.png", 1234)  # rewritten: new size in bytes and mtime
    after = load("folder", data, image_size=8)
    assert entries() != old and len(entries()) == 1
    assert not torch.equal(after.x[3], before.x[3]) and torch.equal(after.x[2], before.x[2])
    assert torch.equal(after.x, load("folder", data, image_size=8, cache=False).x)
    os.utime(data / "img_00.png", ns=(1, 1))  # touched only: also a new key
    load("folder", data, image_size=8)
    assert len(entries()) == 1 and entries() != sorted(set(old))
    picture(data / "img_99.png", 5)  # a file added
    assert len(load("folder", data, image_size=8)) == 7 and len(entries()) == 1
    labelled = tmp_path / "classes"
    picture(labelled / "a" / "1.png", 1)
    picture(labelled / "b" / "2.png", 2)
    load("folder", labelled, image_size=8)
    picture(labelled / "a" / "3.png", 3)  # new labels too: still replaces the entry of that folder
    assert load("folder", labelled, image_size=8).y.tolist() == [0, 0, 1] and len(entries()) == 2


def test_a_truncated_cache_file_is_rebuilt_with_one_warning(tmp_path, capsys):
    data = flat(tmp_path / "faces")
    good = load("folder", data, image_size=8).x.clone()  # a copy: the map itself shows the truncation
    npy = cache_dir() / entries()[0]
    with open(npy, "r+b") as f:
        f.truncate(npy.stat().st_size - 100)
    capsys.readouterr()
    again = load("folder", data, image_size=8)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("ganzoo: warning: cached data") and "damaged" in err[0]
    assert torch.equal(again.x, good)
    assert npy.stat().st_size > 0 and len(entries()) == 1
    load("folder", data, image_size=8)
    assert capsys.readouterr().err == ""  # the rebuilt entry is valid


def test_an_array_without_its_sidecar_is_never_used(tmp_path):
    data = flat(tmp_path / "faces")
    good = load("folder", data, image_size=8).x.clone()
    npy = cache_dir() / entries()[0]
    npy.with_suffix(".json").unlink()  # as if killed between the two renames
    np.lib.format.open_memmap(npy, mode="r+")[:] = 0
    assert torch.equal(load("folder", data, image_size=8).x, good)


def test_an_unwritable_cache_folder_falls_back_to_memory(tmp_path, monkeypatch, capsys):
    data = flat(tmp_path / "faces")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GANZOO_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    capsys.readouterr()
    ds = load("folder", data, image_size=8)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "ganzoo: warning: the data cache folder" in err[0] and "not writable" in err[0]
    assert torch.equal(ds.x, load("folder", data, image_size=8, cache=False).x)


def test_every_bad_file_is_reported_at_once(tmp_path):
    data = flat(tmp_path / "faces", n=3)
    for i in range(7):
        (data / f"bad_{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(GanzooError) as exc:
        load("folder", data, image_size=8)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("7 of 10 image files cannot be read: ")
    assert msg.count("/bad_") == 5 and "and 2 more" in msg and "skip_bad_images=true" in msg
    assert entries() == []  # nothing cached for a failed decode
    ok = load("folder", data, image_size=8, skip_bad_images=True)
    assert len(ok) == 3 and len(ok.extra["skipped_images"]) == 7
    assert torch.equal(ok.x, load("folder", flat(tmp_path / "good", n=3), image_size=8).x)
    (data / "img_00.png").write_bytes(b"broken too")
    with pytest.raises(GanzooError, match="8 of 10"):  # all bad but two: still fine to skip, not all
        load("folder", data, image_size=8)
    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_bytes(b"nope")
    with pytest.raises(GanzooError, match="1 of 1 image files cannot be read"):
        load("folder", only_bad, image_size=8, skip_bad_images=True)


def test_bad_files_through_the_cli(cli, tmp_path):
    data = flat(tmp_path / "faces", n=4)
    (data / "broken.png").write_bytes(b"nope")
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--steps", 2, "--quiet",
            "--out", tmp_path / "run")
    assert_user_error(r, "1 of 5 image files cannot be read", "broken.png", "skip_bad_images=true")
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--steps", 2, "--quiet",
            "--set", "skip_bad_images=true", "--out", tmp_path / "run")
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("ganzoo: warning: skipping 1 unreadable image file")
    listed = (tmp_path / "run" / "skipped_images.txt").read_text().splitlines()
    assert len(listed) == 1 and listed[0].startswith(str(data / "broken.png") + "\t")


def test_flat_folder_is_an_unlabelled_set_and_class_folders_still_label(tmp_path, cli):
    data = flat(tmp_path / "img_align_celeba", n=5)
    ds = load("folder", data, image_size=8)
    assert ds.y is None and ds.info.num_classes == 0 and len(ds) == 5
    labelled = tmp_path / "classes"
    picture(labelled / "cats" / "a.png", 1)
    picture(labelled / "dogs" / "b.png", 2)
    picture(labelled / "dogs" / "c.png", 3)
    ds = load("folder", labelled, image_size=8)
    assert ds.y.tolist() == [0, 1, 1] and ds.info.class_names == ("cats", "dogs")
    picture(labelled / "loose.png", 4)  # beside class folders: left out, with a warning
    assert len(load("folder", labelled, image_size=8)) == 3
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--steps", 2, "--quiet",
            "--out", tmp_path / "run")
    assert r.code == 0, r.err


def test_channels_option(cli, tmp_path):
    data = flat(tmp_path / "faces", n=4)
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--channels", 1, "--steps", 2,
            "--quiet", "--out", tmp_path / "grey")
    assert r.code == 0, r.err
    parts, _ = open_run(str(tmp_path / "grey"))
    assert parts.cfg["image_channels"] == 1 and parts.dataset.info.channels == 1 and parts.dataset.x.shape[1] == 1
    grey = load("folder", data, image_size=8, channels=1)
    rgb = load("folder", data, image_size=8).x.float()
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert (grey.x.float() - luma).abs().max() <= 2.0  # ITU-R 601-2 luma (converted before resizing)
    # digits are grey: --channels 3 makes them RGB
    r = cli("train", "vanilla", "--data", "digits", "--channels", 3, "--steps", 2, "--quiet", "--out", tmp_path / "rgb")
    assert r.code == 0, r.err
    assert open_run(str(tmp_path / "rgb"))[0].dataset.info.channels == 3
    r = cli("train", "vanilla", "--data", "digits", "--set", "image_channels=2", "--steps", 2, "--out", tmp_path / "x")
    assert_user_error(r, "--channels (image_channels) must be 1 (grey) or 3 (RGB), got 2")


def test_idx_and_cifar10_go_through_the_cache(tmp_path):
    n, rows = 5, 6
    img = tmp_path / "mnist" / "train-images-idx3-ubyte"
    img.parent.mkdir()
    pix = (np.arange(n * rows * rows) % 251).astype(np.uint8)
    img.write_bytes(bytes.fromhex("00000803") + n.to_bytes(4, "big") + rows.to_bytes(4, "big") * 2 + pix.tobytes())
    (tmp_path / "mnist" / "train-labels-idx1-ubyte").write_bytes(
        bytes.fromhex("00000801") + n.to_bytes(4, "big") + bytes([0, 1, 2, 1, 0]))
    a = load("idx", tmp_path / "mnist", image_size=8)
    b = load("idx", tmp_path / "mnist", image_size=8)
    c = load("idx", tmp_path / "mnist", image_size=8, cache=False)
    assert len(entries()) == 1 and torch.equal(a.x, c.x) and torch.equal(b.x, c.x)
    assert b.y.tolist() == [0, 1, 2, 1, 0] and b.info.class_names == ("0", "1", "2")
    assert b.info.native_sizes == ((6, 6),) and b.x.shape == (5, 1, 8, 8)


# --- a third-party data set through the public helpers -------------------------------------------


class RawPlugin:
    """A data set plugin with its own file format: 'RAW1', n, side, then n*side*side grey bytes."""

    builds = 0

    @hookimpl
    def ganzoo_datasets(self):
        return [DatasetSpec(name="rawgrey", summary="grey images in a raw file", kind="image",
                            load=self.load, takes_path=True),
                DatasetSpec(name="listed", summary="images named in a list file", kind="image",
                            load=self.load_listed, takes_path=True)]

    def load(self, request):
        path = request.path

        def build(alloc):
            RawPlugin.builds += 1
            raw = open(path, "rb").read()
            n, side = int.from_bytes(raw[4:8], "big"), int.from_bytes(raw[8:12], "big")
            alloc((n, 1, side, side))[:] = np.frombuffer(raw, np.uint8, offset=12).reshape(n, 1, side, side)
            return {"labels": list(range(n))}

        got = cached_array({"format": "rawgrey", "source": f"rawgrey:{path}"}, build, sources=[path],
                           enabled=request.cache)
        x = torch.from_numpy(got.array)
        info = DataInfo(kind="image", name="rawgrey", channels=1, height=x.shape[2], width=x.shape[3])
        return Dataset(info=info, x=x, y=torch.tensor(got.meta["labels"]))

    def load_listed(self, request):
        folder = os.path.dirname(request.path)
        files = [os.path.join(folder, ln) for ln in open(request.path).read().split()]
        got = load_image_files(files, request, size=request.image_size or 8, channels=3, source=f"listed:{request.path}")
        return Dataset(info=DataInfo(kind="image", name="listed", channels=3, height=8, width=8), x=got.x)


def test_a_plugin_data_set_uses_the_public_cache_helpers(tmp_path):
    reg = Registry()
    reg.register(RawPlugin(), "raw-plugin")
    raw = tmp_path / "set.raw"
    raw.write_bytes(b"RAW1" + (3).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(range(48)))
    RawPlugin.builds = 0
    first = load_dataset(f"rawgrey:{raw}", registry=reg)
    second = load_dataset(f"rawgrey:{raw}", registry=reg)
    assert RawPlugin.builds == 1 and torch.equal(first.x, second.x) and second.y.tolist() == [0, 1, 2]
    assert second.x[2, 0, 3, 3].item() == 47 and len(entries()) == 1
    raw.write_bytes(b"RAW1" + (2).to_bytes(4, "big") + (4).to_bytes(4, "big") + bytes(range(100, 132)))
    third = load_dataset(f"rawgrey:{raw}", registry=reg)
    assert RawPlugin.builds == 2 and len(third) == 2 and third.x[0, 0, 0, 0].item() == 100
    load_dataset(f"rawgrey:{raw}", registry=reg, cache=False)
    assert RawPlugin.builds == 3 and len(entries()) == 1

    flat(tmp_path / "pics", n=3)
    (tmp_path / "pics" / "list.txt").write_text("img_02.png img_00.png")
    listed = load_dataset(f"listed:{tmp_path / 'pics' / 'list.txt'}", registry=reg, progress=False)
    direct = load("folder", tmp_path / "pics", image_size=8)
    assert torch.equal(listed.x[0], direct.x[2]) and torch.equal(listed.x[1], direct.x[0])
    assert len(entries()) == 3


# --- ganzoo cache --------------------------------------------------------------------------------


def test_cache_command_lists_and_clears(cli, tmp_path):
    r = cli("cache")
    assert r.code == 0 and "no cached data sets" in r.out
    load("folder", flat(tmp_path / "faces", n=4), image_size=8)
    load("folder", flat(tmp_path / "other", n=2), image_size=16)
    r = cli("cache")
    assert r.code == 0, r.err
    assert f"folder:{(tmp_path / 'faces').resolve()}" in r.out and "3x16x16" in r.out and "2 sets" in r.out
    listing = json.loads(cli("cache", "--json").out)
    assert sorted(e["shape"][0] for e in listing["entries"]) == [2, 4]
    # sets used recently survive --older-than; an old one goes
    old = cache_dir() / f"{listing['entries'][0]['key']}.json"
    os.utime(old, (1, 1))
    r = cli("cache", "clear", "--older-than", 1)
    assert r.code == 0 and "removed 1 cached set " in r.out and len(entries()) == 1
    r = cli("cache", "clear")
    assert r.code == 0 and "removed 1 cached set " in r.out and entries() == []
    assert_user_error(cli("cache", "clear", "--older-than", -2), "--older-than must be")


def test_channels_option_leaves_a_hyper_parameter_named_channels_to_set():
    """wgan's conv width is a hyper-parameter called ``channels``: --channels is the image channels,
    ``--set channels=N`` still sets the width."""
    from conftest import invoke, only_plugins
    from ganzoo.engine.config import flatten_user, parse_assignment, resolve
    from ganzoo.registry import get_registry

    with only_plugins("wgan,losses,datasets"):
        r = invoke("train", "wgan", "--help")
        assert r.code == 0 and r.out.count("--channels") == 1 and "[1|3]" in r.out
        reg = get_registry()
        spec = reg.get("architecture", "wgan")
        section, key, value = parse_assignment(spec, "channels=8")
        assert (section, key, value) == ("hparams", "channels", 8)
        run, hps = flatten_user(spec, {}, {"image_channels": 1, "data": "digits"})
        cfg = resolve(reg, spec, run, {"channels": 8})
        assert cfg["image_channels"] == 1 and cfg["hparams"]["channels"] == 8


def test_processes_wanting_one_entry_at_once_decode_it_once(tmp_path, monkeypatch):
    """The lock file: two loaders (threads here; processes of a multi-process run alike) start
    together, one decodes, the other waits and maps the result."""
    import threading

    import ganzoo.data.files as files

    data = flat(tmp_path / "faces", n=4)
    calls = []
    real = files.decode_images

    def slow_decode(*a, **k):
        calls.append(1)
        time.sleep(0.3)  # the other thread arrives while this one decodes
        return real(*a, **k)

    monkeypatch.setattr(files, "decode_images", slow_decode)
    out = []
    threads = [threading.Thread(target=lambda: out.append(load("folder", data, image_size=8))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(out) == 2 and len(calls) == 1 and torch.equal(out[0].x, out[1].x)


def test_an_interrupted_decode_leaves_no_entry(tmp_path):
    def build(alloc):
        alloc((3, 1, 2, 2))[:] = 7
        raise KeyboardInterrupt  # killed half-way

    with pytest.raises(KeyboardInterrupt):
        cached_array({"source": "x"}, build)
    assert sorted(p.name for p in cache_dir().iterdir() if not p.name.endswith(".lock")) == []
    got = cached_array({"source": "x"}, lambda alloc: alloc((3, 1, 2, 2)).fill(5))
    assert not got.hit and int(got.array.sum()) == 60
    assert cached_array({"source": "x"}, build).hit  # valid now: build is not called again


def test_decoding_reports_its_rate_unless_quiet(cli, tmp_path):
    data = flat(tmp_path / "faces", n=3)
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--steps", 1, "--out", tmp_path / "a")
    assert r.code == 0 and "ganzoo: decoded 3 images (8x8, 3 channels)" in r.err and "images/s" in r.err
    assert "cached in" in r.err
    r = cli("train", "vanilla", "--data", f"folder:{data}", "--image-size", 8, "--steps", 1, "--out", tmp_path / "b")
    assert r.code == 0 and "decoded" not in r.err  # a cache hit decodes nothing
