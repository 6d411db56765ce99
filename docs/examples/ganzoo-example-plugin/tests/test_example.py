"""The example plugin's tests, written with ganzoo's public test kit only: ``ganzoo.testing`` and the
pytest fixtures ganzoo installs (``ganzoo_registry``, ``ganzoo_register``, ``ganzoo_cli``).

Run them with the plugin installed:  pip install -e . && GANZOO_STRICT_PLUGINS=1 pytest tests
"""

from ganzoo.testing import check_architecture, check_loss


def test_the_plugins_load_cleanly(ganzoo_registry):
    for name in ("pacgan", "rsgan"):
        record = ganzoo_registry.plugins[name]
        assert record.error is None and record.warning is None, record
    assert ganzoo_registry.entry("loss", "rsgan").provider.dist == "ganzoo-example-plugin"


def test_pacgan_passes_the_checks_of_the_builtins(tmp_path):
    # tiny training on points and images, every installed loss x penalty, exact resume,
    # ONNX export parity, one-line errors for bad hyper-parameters
    report = check_architecture("pacgan", workdir=tmp_path)
    assert report["kinds"] == ["points", "image"]


def test_rsgan_passes_the_checks_of_the_builtins(tmp_path):
    report = check_loss("rsgan", workdir=tmp_path)  # trains every installed architecture, or is refused
    assert "pacgan" in report["trained"] and "vanilla" in report["trained"]


def test_a_user_mistake_is_one_line(ganzoo_cli, tmp_path):
    r = ganzoo_cli("train", "pacgan", "--steps", 1, "--batch-size", 1, "--out", tmp_path / "run")
    assert r.code == 2 and r.err.startswith("ganzoo: error: pacgan packs 2 samples") and r.err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # the failed run left nothing behind
