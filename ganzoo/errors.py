"""User-facing errors.

A :class:`GanzooError` is a mistake the user can fix (bad option, bad file, unknown name). The CLI
prints its message as one line on stderr and exits non-zero; it never shows a traceback for one.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class GanzooError(Exception):
    """A user mistake: the message says what is wrong and how to fix it."""

    exit_code = 2


class PluginError(GanzooError):
    """A plugin could not be loaded or returned an invalid spec."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> GanzooError:
    choices = sorted(choices)
    msg = f"unknown {kind} '{name}'{did_you_mean(name, choices)}; choose one of: {', '.join(choices) or '(none installed)'}"
    if hint:
        msg += f"; {hint}"
    return GanzooError(msg)
