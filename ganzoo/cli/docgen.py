"""Write docs/cli.md from the commands' own ``--help``: ``python -m ganzoo.cli.docgen --write``.

A test regenerates the page and compares, so the reference can never drift from the CLI.
"""

from __future__ import annotations

import sys

from click.testing import CliRunner

from .main import COMMANDS, cli

HEADER = """# CLI reference

Generated from `--help` (`ganzoo COMMAND --help` shows the same) by `python -m ganzoo.cli.docgen`.
Every command prints mistakes as one line `ganzoo: error: ...` with exit code 2.
"""

#: sub-commands that get their own section besides the top-level ones (one architecture's train options)
EXTRA = (("train", "vanilla"),)


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="ganzoo", terminal_width=100)
    if result.exit_code != 0:  # pragma: no cover - a broken command is a bug the test reports
        raise RuntimeError(f"ganzoo {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip()


def render() -> str:
    """The whole page as one string (sections: ganzoo, each command, then :data:`EXTRA`)."""
    sections = [[]] + [[name] for name in COMMANDS]  # the order of `ganzoo --help`'s table in main.COMMANDS
    for extra in EXTRA:
        sections.insert(sections.index([extra[0]]) + 1, list(extra))
    parts = [HEADER]
    for args in sections:
        parts.append(f"## {' '.join(['ganzoo', *args])}\n\n```\n{_help(args)}\n```\n")
    return "\n".join(parts)


def main(argv: list[str]) -> None:
    """``--write``: replace docs/cli.md of this checkout (only once every section rendered); else print."""
    text = render()
    if "--write" in argv:
        from pathlib import Path

        (Path(__file__).resolve().parents[2] / "docs" / "cli.md").write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
