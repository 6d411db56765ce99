"""docs/cli.md is the CLI's own --help: regenerate it and compare, so the reference cannot drift."""

from __future__ import annotations

from pathlib import Path

from ganzoo.cli.docgen import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_matches_the_help_texts():
    assert DOC.read_text() == render(), "docs/cli.md is out of date: python -m ganzoo.cli.docgen --write"


def test_every_command_has_a_section():
    from ganzoo.cli.main import COMMANDS

    text = DOC.read_text()
    for name in COMMANDS:
        assert f"\n## ganzoo {name}\n" in text, name
