"""Full-resolution image-to-image: the dynamic-size export of CycleGAN's generators and ``ganzoo translate``.

One tiny RGB CycleGAN (16 px crops, two downsamplings: sizes must be multiples of 4) is trained one
step and exported once for the module, as a user would. Then: the export's symbolic height and width
and its parity with PyTorch at several sizes (plain and CPU graph); ``ganzoo translate`` writing one
file per input at the input's own size (multiples of 4 and not, non-square, grayscale, RGBA,
EXIF-rotated), compared pixel by pixel with PyTorch on the reflect-padded image; names, counts and
skipped files; the run-directory path; sizes and memory refusals as one line; no torch for .onnx.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from conftest import assert_interrupted, assert_user_error, invoke, torch_blocked_env
from ganzoo.deploy.contract import ModelInfo
from ganzoo.deploy.export import RunModel, export_run
from ganzoo.deploy.runtime import GanzooModel
from ganzoo.deploy.translate import padded_size, reflect_pad, translate
from ganzoo.engine.config import flatten_user, resolve
from ganzoo.engine.rundir import RunDir
from ganzoo.engine.trainer import Trainer
from ganzoo.registry import get_registry

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory):
    """A trained-one-step RGB CycleGAN run (16 px, n_down 2) with G_AB.onnx and G_BA.onnx exported."""
    root = tmp_path_factory.mktemp("cyclegan")
    rng = np.random.default_rng(0)
    for sub in ("trainA", "trainB"):
        (root / "data" / sub).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "data" / sub / f"{i}.png")
    reg = get_registry()
    spec = reg.get("architecture", "cyclegan")
    run, hp = flatten_user(spec, {}, {"data": f"unpaired:{root / 'data'}", "image_size": 16, "steps": 1, "batch_size": 2,
                                      "seed": 0, "device": "cpu", "sample_every": 1000, "eval_samples": 8,
                                      "ngf": 4, "ndf": 4, "n_down": 2, "n_blocks": 1})
    Trainer(resolve(reg, spec, run, hp), RunDir(root / "run"), quiet=True).fit()
    export_run(root / "run")
    return root / "run"


def _photos(folder: Path) -> dict[str, tuple[int, int]]:
    """Inputs of every awkward kind; name -> the (height, width) the output must have."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / "square16.png")
    Image.fromarray(rng.integers(0, 256, (23, 17, 3), dtype=np.uint8)).save(folder / "odd.jpg", quality=95)
    Image.fromarray(rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (21, 10), dtype=np.uint8), "L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 256, (14, 9, 4), dtype=np.uint8), "RGBA").save(folder / "alpha.png")
    rotated = Image.fromarray(rng.integers(0, 256, (10, 30, 3), dtype=np.uint8))  # stored 30 wide, 10 high
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": shown 10 wide, 30 high
    rotated.save(folder / "phone.jpg", exif=exif, quality=95)
    return {"square16": (16, 16), "odd": (23, 17), "wide": (12, 40), "gray": (21, 10), "alpha": (14, 9), "phone": (30, 10)}


def _torch_reference(run_model: RunModel, x: np.ndarray) -> np.ndarray:
    """PyTorch's output for an image [C, h, w]: reflect-padded to a size the network takes, cropped back."""
    h, w = x.shape[1:]
    padded, (top, left) = reflect_pad(x[None], *padded_size(run_model.info, h, w))
    return run_model.run(image=padded)[0, :, top:top + h, left:left + w]


def _as_input(path: Path) -> np.ndarray:
    from PIL import ImageOps

    with Image.open(path) as im:
        arr = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.float32)
    return arr.transpose(2, 0, 1) / 127.5 - 1


# -- the export -------------------------------------------------------------------------------------

def test_generators_export_with_symbolic_height_and_width(cyclegan):
    for net in ("G_AB", "G_BA"):
        model = onnx.load(str(cyclegan / f"{net}.onnx"))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        assert dims[1].dim_value == 3
        assert all(d.dim_param and not d.dim_value for d in (dims[0], dims[2], dims[3])), dims
        info = GanzooModel(cyclegan / f"{net}.onnx", provider="cpu").info
        assert (info.height, info.width, info.size_multiple, info.min_size) == (16, 16, 4, 8)
        assert info.dynamic_size and info.activation_floats >= 4  # ngf 4 channels at full resolution
        assert "multiples of 4" in info.describe()
    assert "G_AB(image of any size)" in invoke("info", "cyclegan").out


@pytest.mark.parametrize("graph", ["plain", "cpu"])
def test_onnx_agrees_with_pytorch_at_several_sizes(cyclegan, graph):
    m = GanzooModel(cyclegan / "G_AB.onnx", provider="cpu", graph=graph)
    assert m.graph == graph  # the CPU rewrite applies to the dynamic-size graph too
    ref = RunModel(cyclegan, net="G_AB")
    rng = np.random.default_rng(0)
    for n, h, w in ((1, 16, 16), (2, 20, 28), (1, 36, 8), (3, 8, 12), (1, 64, 44)):
        x = rng.uniform(-1, 1, (n, 3, h, w)).astype(np.float32)
        out = m.run(image=x)
        assert out.shape == (n, 3, h, w)
        assert np.abs(out - ref.run(image=x)).max() < 1e-4, (graph, h, w)


def test_sizes_the_network_cannot_take_are_refused_with_the_rule(cyclegan):
    m = GanzooModel(cyclegan / "G_AB.onnx", provider="cpu")
    with pytest.raises(Exception, match="multiples of 4"):
        m.run(image=np.zeros((1, 3, 18, 16), np.float32))
    with pytest.raises(Exception, match="at least 8 px"):
        m.run(image=np.zeros((1, 3, 4, 16), np.float32))


# -- ganzoo translate -------------------------------------------------------------------------------

def test_translate_writes_each_input_at_its_own_size(cyclegan, tmp_path):
    want = _photos(tmp_path / "photos")
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    r = invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "out")
    assert r.code == 0 and r.exception is None, r.err
    assert "translated 6 image(s) with cyclegan/G_AB" in r.out
    warnings = [ln for ln in r.err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "skipped 2 file(s)" in warnings[0] and "notes.txt" in warnings[0]
    notes = [ln for ln in r.err.splitlines() if ln.startswith("ganzoo: note:")]
    assert len(notes) == 1 and "grayscale converted to RGB" in notes[0] and "alpha channel" in notes[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{k}.png" for k in want)
    ref = RunModel(cyclegan, net="G_AB")
    for name, (h, w) in want.items():
        with Image.open(tmp_path / "out" / f"{name}.png") as im:
            assert (im.height, im.width) == (h, w), name
            assert im.mode == ("RGBA" if name == "alpha" else "RGB"), name
            got = np.asarray(im.convert("RGB"), dtype=np.int16)
        src = next((tmp_path / "photos").glob(f"{name}.*"))
        expected = np.rint((np.clip(_torch_reference(ref, _as_input(src)), -1, 1) + 1) * 127.5).transpose(1, 2, 0)
        assert np.abs(got - expected).max() <= 1, name  # ONNX Runtime vs PyTorch: at most one level of rounding
    with Image.open(tmp_path / "out" / "alpha.png") as im, Image.open(tmp_path / "photos" / "alpha.png") as src:
        assert np.array_equal(np.asarray(im.getchannel("A")), np.asarray(src.getchannel("A")))


def test_translating_from_the_run_directory_matches_the_onnx_file(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    for source, out in ((cyclegan, "torch"), (cyclegan / "G_BA.onnx", "onnx")):
        extra = ["--net", "G_BA"] if out == "torch" else []
        r = invoke("translate", source, tmp_path / "photos" / "odd.jpg", tmp_path / "photos" / "wide.png", *extra,
                   "--out-dir", tmp_path / out)
        assert r.code == 0, r.err
        assert "cyclegan/G_BA" in r.out and ("torch-cpu" in r.out) == (out == "torch")
    for name in ("odd.png", "wide.png"):
        a = np.asarray(Image.open(tmp_path / "torch" / name), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / "onnx" / name), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1


def test_same_size_images_are_batched_and_names_that_collide_are_kept_apart(cyclegan, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(tmp_path / folder / "x.png")
    Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(tmp_path / "a" / "x.jpg")
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(tmp_path / "a" / "y.png")
    batches = []
    real_run = GanzooModel.run
    monkeypatch.setattr(GanzooModel, "run", lambda self, **kw: batches.append(kw["image"].shape) or real_run(self, **kw))
    res = translate(cyclegan / "G_AB.onnx", [tmp_path / "a", tmp_path / "b"], tmp_path / "out", progress=False)
    assert sorted(batches) == [(1, 3, 12, 12), (3, 3, 12, 20)]  # 9x9 padded to 12x12; the three 12x20 together
    assert [p.name for p in res.written] == ["x_jpg.png", "x_png.png", "y.png", "x_png_2.png"]
    assert all(p.exists() for p in res.written)


def test_size_train_and_a_number_and_side_by_side(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    src = tmp_path / "photos" / "wide.png"  # 40 x 12
    r = invoke("translate", cyclegan / "G_AB.onnx", src, "--out-dir", tmp_path / "t", "--size", "train")
    assert r.code == 0 and Image.open(tmp_path / "t" / "wide.png").size == (16, 16)
    r = invoke("translate", cyclegan / "G_AB.onnx", src, "--out-dir", tmp_path / "n", "--size", "24", "--side-by-side")
    assert r.code == 0 and Image.open(tmp_path / "n" / "wide.png").size == (2 * 80, 24)  # shorter side 24, input | output
    pair = np.asarray(Image.open(tmp_path / "n" / "wide.png"), dtype=np.int16)
    resized = np.asarray(Image.open(src).resize((80, 24), Image.BICUBIC), dtype=np.int16)
    assert np.abs(pair[:, :80] - resized).max() <= 1  # the left half is the input as translated


def test_mistakes_are_one_line(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    photos = tmp_path / "photos"
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos, "--out-dir", tmp_path / "o", "--max-pixels", "300"),
                      "--max-pixels", "--size")
    assert not (tmp_path / "o").exists()  # refused before any work
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos, "--out-dir", photos), "overwrite an input")
    (tmp_path / "notes.txt").write_text("x")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "notes.txt", "--out-dir", tmp_path / "o"),
                      "notes.txt", "not an image")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "nope", "--out-dir", tmp_path / "o"), "does not exist")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos, "--out-dir", tmp_path / "o", "--size", "big"),
                      "--size big")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos, "--net", "G_BA", "--out-dir", tmp_path / "o"), "--net")
    assert_user_error(invoke("translate", cyclegan, photos, "--net", "D_A", "--out-dir", tmp_path / "o"), "G_AB, G_BA")


def test_an_image_too_large_for_memory_is_refused_before_any_work(cyclegan, tmp_path, monkeypatch):
    import ganzoo.deploy.translate as tr

    _photos(tmp_path / "photos")
    Image.new("RGB", (64, 48)).save(tmp_path / "photos" / "big.png")
    monkeypatch.setattr(tr, "available_memory", lambda: 2**17)  # 128 KiB free: the 16x16 images fit, 64x48 does not
    r = invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o")
    assert_user_error(r, "big.png is 64x48 px", "GiB available", "--size 16", "--max-pixels 3072")
    assert not (tmp_path / "o").exists()


def test_a_fixed_size_model_translates_at_its_size_only(cyclegan, tmp_path):
    model = onnx.load(str(cyclegan / "G_AB.onnx"))  # as a file exported before dynamic sizes: no size_multiple
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in ("size_multiple", "min_size")]
    del model.metadata_props[:]
    for k, v in keep:
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(tmp_path / "old.onnx"))
    _photos(tmp_path / "photos")
    assert_user_error(invoke("translate", tmp_path / "old.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o"),
                      "fixed 16x16", "--size train")
    r = invoke("translate", tmp_path / "old.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o", "--size", "train")
    assert r.code == 0 and {Image.open(p).size for p in (tmp_path / "o").iterdir()} == {(16, 16)}


def test_noise_models_do_not_translate(tmp_path):
    from test_runtime import build

    path = build(tmp_path / "cond.onnx")
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert_user_error(invoke("translate", path, tmp_path / "a.png", "--out-dir", tmp_path / "o"), "ganzoo sample")


def test_translate_from_onnx_runs_where_torch_cannot_be_imported(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    env, marker = torch_blocked_env(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "ganzoo.cli.main", "translate", str(cyclegan / "G_AB.onnx"),
                           str(tmp_path / "photos"), "--out-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "the .onnx translate path imported torch"
    assert len(list((tmp_path / "out").iterdir())) == 6


def test_the_python_api_takes_a_loaded_model(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    model = GanzooModel(cyclegan / "G_AB.onnx", provider="cpu")
    heard = []
    res = translate(model, tmp_path / "photos" / "gray.png", tmp_path / "out", progress=False, log=lambda k, m: heard.append(k))
    assert [p.name for p in res.written] == ["gray.png"] and heard == ["note"]
    assert isinstance(model.info, ModelInfo) and res.provider == "cpu" and res.model == "cyclegan/G_AB"


def test_the_python_api_translates_a_run_as_the_cli_does(cyclegan, tmp_path):
    """``ganzoo.load(run).translate(...)`` writes the files ``ganzoo translate RUN_DIR`` writes."""
    import ganzoo

    _photos(tmp_path / "photos")
    res = ganzoo.load(cyclegan).translate(tmp_path / "photos" / "odd.jpg", tmp_path / "api", net="G_BA", progress=False)
    assert [p.name for p in res.written] == ["odd.png"]
    r = invoke("translate", cyclegan, tmp_path / "photos" / "odd.jpg", "--net", "G_BA", "--out-dir", tmp_path / "cli")
    assert r.code == 0, r.err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "api" / "odd.png")), np.asarray(Image.open(tmp_path / "cli" / "odd.png")))


def _truncated_jpeg(path: Path) -> None:
    """A JPEG whose header reads (Image.open works) but whose pixels stop half way."""
    data_file = path.with_name("whole.tmp.jpg")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(data_file, quality=90)
    data = data_file.read_bytes()
    data_file.unlink()
    path.write_bytes(data[: len(data) // 2])


def _bomb_png(path: Path) -> None:
    """A PNG header claiming 30000x30000 px: Pillow refuses to open it (DecompressionBombError)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_undecodable_images_are_skipped_in_a_folder_and_refused_when_named(cyclegan, tmp_path):
    photos = tmp_path / "photos"
    sizes = _photos(photos)
    _truncated_jpeg(photos / "cut.jpg")
    _bomb_png(photos / "bomb.png")
    r = invoke("translate", cyclegan / "G_AB.onnx", photos, "--out-dir", tmp_path / "o", "--quiet")
    assert r.exception is None and r.code == 0, (r.err, r.exception)
    assert "Traceback" not in r.err
    assert "cut.jpg" in r.err and "bomb.png" in r.err  # named in warnings
    assert sorted(p.stem for p in (tmp_path / "o").glob("*.png")) == sorted(sizes)  # every other image translated
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos / "cut.jpg", "--out-dir", tmp_path / "o2"),
                      "cut.jpg", "cannot be decoded")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", photos / "bomb.png", "--out-dir", tmp_path / "o2"),
                      "bomb.png", "not an image that can be read")
    (tmp_path / "only_bad").mkdir()
    _bomb_png(tmp_path / "only_bad" / "bomb.png")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "only_bad", "--out-dir", tmp_path / "o2"),
                      "no images", "could not be read: bomb.png")


def test_an_out_dir_that_cannot_be_a_folder_is_one_line(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    (tmp_path / "afile").write_text("x")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "afile"),
                      "is a file")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "afile" / "sub"),
                      "cannot create that folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_an_image_named_twice_is_translated_once(cyclegan, tmp_path):
    _photos(tmp_path / "photos")
    gray = tmp_path / "photos" / "gray.png"
    r = invoke("translate", cyclegan / "G_AB.onnx", gray, gray, tmp_path / "photos", "--out-dir", tmp_path / "o", "--quiet")
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()).count("gray.png") == 1
    assert not list((tmp_path / "o").glob("gray_*"))


def test_a_large_photo_gives_no_pillow_warning_only_ganzoos_own_check(cyclegan, tmp_path, monkeypatch):
    import warnings

    _photos(tmp_path / "photos")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # the 16x16 to 23x17 inputs now count as 'large' to Pillow
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o", "--quiet")
    assert r.code == 0, r.err
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    assert len(list((tmp_path / "o").glob("*.png"))) == 6


def test_ctrl_c_says_the_translated_images_are_kept(cyclegan, tmp_path, monkeypatch):
    _photos(tmp_path / "photos")
    calls = []
    real_run = GanzooModel.run

    def run_then_interrupt(self, **feeds):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(self, **feeds)

    monkeypatch.setattr(GanzooModel, "run", run_then_interrupt)
    r = invoke("translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o", "--batch-size", "1", "--quiet")
    line = assert_interrupted(r, "translated so far are kept", "--skip-existing to finish")
    assert "checkpoint" not in line
    first = list((tmp_path / "o").glob("*.png"))
    assert len(first) == 1
    before = (first[0].stat().st_mtime_ns, first[0].read_bytes())
    monkeypatch.setattr(GanzooModel, "run", real_run)
    calls.clear()
    cmd = ["translate", cyclegan / "G_AB.onnx", tmp_path / "photos", "--out-dir", tmp_path / "o", "--batch-size", "1", "--quiet"]
    assert_user_error(invoke(*cmd), "1 of the 6 outputs already exist", first[0].name, "--skip-existing", "--overwrite")
    r = invoke(*cmd, "--skip-existing")
    assert r.code == 0, r.err
    assert "translated 5 image(s)" in r.out and "1 image(s) already translated" in r.err
    assert len(list((tmp_path / "o").glob("*.png"))) == 6
    assert (first[0].stat().st_mtime_ns, first[0].read_bytes()) == before  # left as it was
    r = invoke(*cmd, "--skip-existing")  # nothing left to do
    assert r.code == 0 and "translated 0 image(s)" in r.out, r.err
    r = invoke(*cmd, "--overwrite")
    assert r.code == 0 and "translated 6 image(s)" in r.out, r.err
    assert first[0].stat().st_mtime_ns != before[0]
    assert_user_error(invoke(*cmd, "--overwrite", "--skip-existing"), "exclude each other")
    first[0].unlink()
    first[0].mkdir()  # a folder where an output goes: refused before any work, whatever the option
    for option in ("--overwrite", "--skip-existing"):
        assert_user_error(invoke(*cmd, option), f"{first[0]} is in the way of an output")


def test_a_bad_option_value_is_one_line_too(cyclegan, tmp_path):
    r = invoke("translate", cyclegan / "G_AB.onnx", tmp_path, "--out-dir", tmp_path / "o", "--batch-size", "many")
    assert_user_error(r, "--batch-size", "'ganzoo translate --help'")
    assert_user_error(invoke("translate", cyclegan / "G_AB.onnx", tmp_path), "--out-dir")  # missing option


def test_a_dark_16_bit_image_stays_dark(tmp_path):
    from ganzoo.deploy.pictures import load_image

    path = tmp_path / "dark16.png"
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(path)  # 200 of 65535: almost black
    assert Image.open(path).mode == "I;16"
    arr, _, conversion = load_image(path, 1, (8, 8))
    assert conversion == "scaled from 16 bits"
    assert np.allclose(arr, -1.0, atol=0.01)  # 200/65535 of white is black in 8 bits, not 8-bit 200 (0.57)
