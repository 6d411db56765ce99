"""Seeing a run: report.html (parsed: its images decode, its metrics are metrics.jsonl's), stale
ONNX exports named by the report and by ganzoo eval, ``ganzoo report`` comparing runs, TensorBoard
events (read back) and the one line a run prints when tensorboardX is missing."""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from conftest import assert_user_error, only_plugins, invoke

TINY = ["--batch-size", 32, "--device", "cpu", "--set", "hidden=16", "--set", "layers=2", "--set", "eval_samples=300",
        "--set", "log_every=5", "--set", "sample_every=2", "--set", "checkpoint_every=10"]
DC_TINY = ["--device", "cpu", "--image-size", 16, "--batch-size", 16, "--set", "ngf=8", "--set", "ndf=8",
           "--set", "sample_every=4", "--set", "log_every=2"]


class Page(HTMLParser):
    """The parts of a report page the tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.imgs: list[dict] = []
        self.ids: list[str] = []
        self.cells: list[dict] = []
        self.rows: list[dict] = []
        self.polylines: list[dict] = []
        self.scripts = 0
        self.external: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a)
            if not a.get("src", "").startswith("data:"):
                self.external.append(a.get("src", ""))
        if tag == "td" and "data-key" in a:
            self.cells.append(a)
        if tag == "tr":
            self.rows.append(a)
        if tag == "polyline":
            self.polylines.append(a)
        if tag == "script":
            self.scripts += 1
        if tag == "link" or (tag in ("script", "iframe") and "src" in a):
            self.external.append(a.get("href") or a.get("src"))


def decode(img: dict) -> Image.Image:
    head, data = img["src"].split(",", 1)
    assert head == "data:image/png;base64"
    im = Image.open(io.BytesIO(base64.b64decode(data)))
    im.load()
    return im


@pytest.fixture(scope="module")
def ring_run(cli, tmp_path_factory):
    run = tmp_path_factory.mktemp("report") / "ring"
    r = cli("train", "vanilla", "--steps", 30, "--seed", 1, "--out", run, "--quiet", *TINY)
    assert r.code == 0, r.err
    return run


def test_report_of_a_finished_run(ring_run):
    page = Page((ring_run / "report.html").read_text())
    assert page.scripts == 0 and page.external == []  # opens from disk: nothing to fetch
    for section in ("progress", "losses", "samples", "evaluation", "onnx", "configuration", "metrics", "config"):
        assert section in page.ids
    # sample grids over time: 16 written (0, 2, ..., 30), 12 shown evenly spaced with the first and last
    pngs = sorted((ring_run / "samples").glob("step_*.png"))
    assert len(pngs) == 16 and len(page.imgs) == 12
    shown = [decode(img) for img in page.imgs]
    assert all(im.format == "PNG" and im.size[0] > 100 for im in shown)
    assert page.imgs[0]["alt"] == "samples at step 0" and page.imgs[-1]["alt"] == "samples at step 30"
    with Image.open(pngs[-1]) as last:
        assert shown[-1].tobytes() == last.tobytes()
    # metrics: the run's own end-of-run evaluation, exactly as logged
    logged = [json.loads(ln) for ln in (ring_run / "metrics.jsonl").read_text().splitlines()]
    ev = [rec["eval"] for rec in logged if "eval" in rec][-1]
    shown_metrics = {c["data-key"]: json.loads(c["data-value"]) for c in page.cells}
    assert shown_metrics == {k: ev[k] for k in ("modes", "high_quality", "reverse_kl")}
    # one loss curve per logged loss
    losses = {k for rec in logged if "eval" not in rec for k in rec if k[:2] in ("d_", "g_")}
    assert {p["data-series"] for p in page.polylines} == losses
    assert len(page.polylines[0]["points"].split()) == 6  # steps 5..30
    text = (ring_run / "report.html").read_text()
    assert "finished" in text and "step 30 of 30" in text


def test_report_of_an_image_run_with_exports_eval_and_a_stale_onnx(tmp_path):
    with only_plugins("vanilla,losses,datasets,dcgan"):
        run = tmp_path / "dc"
        r = invoke("train", "dcgan", "--steps", 8, "--out", run, "--quiet", *DC_TINY)
        assert r.code == 0, r.err
        r = invoke("export", run, "--onnx", "--quiet")
        assert r.code == 0, r.err
        page = Page((run / "report.html").read_text())  # refreshed by the export
        exp = [row for row in page.rows if "data-file" in row]
        assert [(row["data-file"], row["data-stale"]) for row in exp] == [("generator.onnx", "false")]
        recorded = json.loads((run / "exports.json").read_text())["generator.onnx"]
        assert recorded["step"] == 8 and len(recorded["errors"]) >= 2  # batch sizes (and sizes) checked at export
        assert max(recorded["errors"].values()) <= recorded["tolerance"]
        text = (run / "report.html").read_text()
        for key, err in recorded["errors"].items():
            assert f"{err:.1e} at {key}" in text

        r = invoke("eval", run, "--json", "--samples", 64)
        assert r.code == 0, r.err
        assert "exported at step" not in r.err  # the export is current
        result = json.loads(r.out)
        page = Page((run / "report.html").read_text())
        shown = {c["data-key"]: json.loads(c["data-value"]) for c in page.cells}
        assert shown and all(shown[k] == result[k] for k in shown)  # metrics beside their floors, from eval.json
        assert "classifier_fd" in shown and "real half vs half" in (run / "report.html").read_text()

        r = invoke("train", "dcgan", "--resume", run, "--steps", 10, "--quiet")
        assert r.code == 0, r.err
        page = Page((run / "report.html").read_text())
        exp = [row for row in page.rows if "data-file" in row]
        assert exp[0]["data-stale"] == "true"
        assert "generator.onnx was exported at step 8 but the checkpoint is at step 10" in (run / "report.html").read_text()
        r = invoke("eval", run, "--samples", 64)
        assert r.code == 0, r.err
        notes = [ln for ln in r.err.splitlines() if "exported at step" in ln]
        assert notes == [f"ganzoo: note: generator.onnx was exported at step 8 but the checkpoint is at step 10; "
                         f"export again with 'ganzoo export {run}'"]


def test_compare_runs(cli, ring_run, tmp_path):
    other = tmp_path / "hinge"
    r = cli("train", "vanilla", "--steps", 20, "--seed", 1, "--loss", "hinge", "--out", other, "--quiet", *TINY)
    assert r.code == 0, r.err
    out = tmp_path / "cmp.html"
    r = cli("report", ring_run, other, "--out", out)
    assert r.code == 0 and r.lines == [str(out)], r.err
    page = Page(out.read_text())
    assert page.scripts == 0 and page.external == []
    runs = [row["data-run"] for row in page.rows if "data-run" in row]
    assert runs == ["ring", "hinge"]
    for run in (ring_run, other):
        ev = [json.loads(ln)["eval"] for ln in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in ln][-1]
        cells = [c for c in page.cells]
        i = (ring_run, other).index(run)
        per_run = cells[i * len(cells) // 2:(i + 1) * len(cells) // 2]
        assert {c["data-key"]: json.loads(c["data-value"]) for c in per_run} == {
            k: ev[k] for k in ("modes", "high_quality", "reverse_kl")}
    # loss curves overlaid: one line per run in each panel; the final grids side by side
    assert sorted(p["data-series"] for p in page.polylines) == ["hinge", "hinge", "ring", "ring"]
    assert [img["alt"] for img in page.imgs] == ["ring at step 30", "hinge at step 20"]
    assert all(decode(img).size[0] > 100 for img in page.imgs)
    text = out.read_text()
    assert "Settings that differ" in text and ">hinge<" in text and ">steps<" in text


def test_report_errors_are_one_line(cli, tmp_path):
    assert_user_error(cli("report", tmp_path / "missing"), "does not exist")
    (tmp_path / "d").mkdir()
    assert_user_error(cli("report", tmp_path / "d"), "not a ganzoo run directory")


# -- TensorBoard -------------------------------------------------------------------------------------
def read_events(run: Path) -> list:
    """Every Event in the run's event files (TFRecord framing: length, crc, data, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for f in sorted(run.glob("events.out.tfevents.*")):
        data = f.read_bytes()
        pos = 0
        while pos < len(data):
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            ev = Event()
            ev.ParseFromString(data[pos + 12:pos + 12 + n])
            events.append(ev)
            pos += 12 + n + 4
    return events


def test_tensorboard_events(ring_run):
    scalars: dict[str, list[tuple[int, float]]] = {}
    images, plugins = [], set()
    for ev in read_events(ring_run):
        for v in ev.summary.value:
            if v.HasField("image"):
                images.append((ev.step, v.image))
            elif v.metadata.plugin_data.plugin_name:
                plugins.add((v.tag, v.metadata.plugin_data.plugin_name))
            else:
                scalars.setdefault(v.tag, []).append((ev.step, v.simple_value))
    logged = [json.loads(ln) for ln in (ring_run / "metrics.jsonl").read_text().splitlines()]
    d_loss = [(rec["step"], rec["d_loss"]) for rec in logged if "d_loss" in rec]
    assert [s for s, _ in scalars["loss/d_loss"]] == [s for s, _ in d_loss]
    assert [v for _, v in scalars["loss/d_loss"]] == pytest.approx([v for _, v in d_loss], rel=1e-6)
    assert scalars["lr/G"] and all(v == pytest.approx(1e-3) for _, v in scalars["lr/G"])
    ev = [rec["eval"] for rec in logged if "eval" in rec][-1]
    assert scalars["eval/reverse_kl"] == [(30, pytest.approx(ev["reverse_kl"]))]
    assert [s for s, _ in images] == list(range(0, 31, 2))
    im = Image.open(io.BytesIO(images[-1][1].encoded_image_string))
    with Image.open(ring_run / "samples/step_000030.png") as png:
        assert im.size == png.size
    assert ("_hparams_/experiment", "hparams") in plugins and ("_hparams_/session_start_info", "hparams") in plugins


def test_without_tensorboardx_the_run_says_so_once(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX now fails
    run = tmp_path / "run"
    r = cli("train", "vanilla", "--steps", 6, "--out", run, *TINY)
    assert r.code == 0 and r.exception is None, r.err
    notes = [ln for ln in r.err.splitlines() if "TensorBoard" in ln]
    assert notes == ["ganzoo: TensorBoard events off: tensorboardX is not installed (pip install 'ganzoo[tensorboard]')"]
    assert not list(run.glob("events.out.tfevents.*")) and (run / "report.html").is_file()
