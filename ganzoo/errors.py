"""User-facing errors.

A :class:`GanzooError` is a mistake the user can fix (bad option, bad file, unknown name). The CLI
prints its message as one line on stderr and exits non-zero; it never shows a traceback for one.
"""

from __future__ import annotations

import difflib
import os
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


def plugin_failure_line(record, exc: BaseException, step: str = "", note: str = "") -> str:
    """One line for an exception raised in a plugin's code: the plugin (``record``: a registry
    ``PluginRecord``), the innermost function of its own that raised (file and line), the exception,
    then ``note`` (what was kept) and whom to tell. ``step``: " at step N" or ""."""
    where = ""
    tb = exc.__traceback__
    while tb is not None:  # the innermost frame in the plugin's own code
        module = tb.tb_frame.f_globals.get("__name__", "")
        if any(module == m or module.startswith(m + ".") for m in record.modules):
            code = tb.tb_frame.f_code
            where = f" in {code.co_name} ({os.path.basename(code.co_filename)}:{tb.tb_lineno})"
        tb = tb.tb_next
    text = " ".join(str(exc).split())[:300] or "(no message)"
    line = f"plugin '{record.name}' ({record.provider}) failed{step}{where}: {type(exc).__name__}: {text}"
    return line + (f"; {note}" if note else "") + "; report this to the plugin's authors"
