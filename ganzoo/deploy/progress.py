"""A progress bar on stderr for long deploy jobs (translating folders, writing bulk samples).

tqdm draws it when installed (it comes with the full install); the torch-free install does not
need tqdm, and then a one-line counter is drawn instead. Either shows only on a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class _Counter:
    """The fallback: ``desc: done/total`` rewritten in place at most a few times a second."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool):
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.n = 0
        self._shown = 0.0

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if self.enabled and (now - self._shown > 0.2 or self.n >= self.total):
            self._shown = now
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total} {self.unit}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.n:
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> "_Counter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True) -> Any:
    """A context-managed bar with ``update(k)``; drawn only when ``enabled`` and stderr is a terminal."""
    enabled = enabled and sys.stderr.isatty()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Counter(total, desc, unit, enabled)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True)
