"""``ganzoo cache``: list and clear the decoded data cache (``$GANZOO_CACHE``, default ~/.cache/ganzoo)."""

from __future__ import annotations

import json
import time

import click

from ..errors import GanzooError


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(0, seconds) / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@click.group("cache", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_context
def cache_cmd(ctx, as_json):
    """List the decoded data cache: each cached set's size, source, images and age.

    Image sets read from files (folder:, unpaired:, idx:, cifar10: and plugin sets that use the
    cache) are decoded once and kept here as memory-mapped arrays; later runs start at once. The
    folder is $GANZOO_CACHE (default ~/.cache/ganzoo). 'used' is the time since a run last opened
    the set.

    \b
    Examples:
      ganzoo cache                        # list
      ganzoo cache clear --older-than 30  # remove sets unused for 30 days
      ganzoo cache clear                  # remove everything
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..data.cache import cache_dir, list_entries

    folder = cache_dir()
    entries = list_entries(folder)
    if as_json:
        keep = ("key", "label", "shape", "bytes", "created", "last_used", "ganzoo_version")
        click.echo(json.dumps({"folder": str(folder), "entries": [{k: e.get(k) for k in keep} for e in entries]}, indent=2))
        return
    if not entries:
        click.echo(f"no cached data sets in {folder}")
        return
    now = time.time()
    rows = [("SIZE", "IMAGES", "SHAPE", "AGE", "USED", "SOURCE")]
    for e in entries:
        shape = e.get("shape") or [0]
        rows.append((_size(e.get("bytes", 0)), f"{shape[0]:,}", "x".join(map(str, shape[1:])),
                     _age(now - e.get("created", now)), _age(now - e["last_used"]), e.get("label") or e["key"]))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(c.rjust(w) if i < 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + "  " + r[5])
    total = sum(e.get("bytes", 0) for e in entries)
    click.echo(f"{len(entries)} set{'s' if len(entries) != 1 else ''}, {_size(total)} in {folder}")


@cache_cmd.command("clear")
@click.option("--older-than", "older_than", type=float, metavar="DAYS",
              help="Only remove sets no run has used for more than DAYS days.")
def clear_cmd(older_than):
    """Remove cached data sets (all, or those unused for --older-than DAYS).

    The next run that needs a removed set decodes it again.

    \b
    Examples:
      ganzoo cache clear
      ganzoo cache clear --older-than 7
    """
    from ..data.cache import cache_dir, clear

    if older_than is not None and older_than < 0:
        raise GanzooError(f"--older-than must be a number of days >= 0, got {older_than:g}")
    removed, freed = clear(older_than)
    click.echo(f"removed {removed} cached set{'s' if removed != 1 else ''} ({_size(freed)}) from {cache_dir()}")
