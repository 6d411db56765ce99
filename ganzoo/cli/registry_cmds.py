"""``ganzoo list``, ``ganzoo plugins`` and ``ganzoo info``."""

from __future__ import annotations

import json

import click

from ..errors import GanzooError
from ..registry import KINDS, Entry, get_registry

_PLURAL = {"architecture": "architectures", "loss": "losses", "penalty": "penalties", "dataset": "datasets"}
_KIND_WORDS = {w: k for k, p in _PLURAL.items() for w in (k, p)} | {"arch": "architecture", "archs": "architecture", "data": "dataset"}


def _registry():
    reg = get_registry()
    reg.warn_errors()
    return reg


def _data_of(entry: Entry) -> str:
    s = entry.spec
    if entry.kind == "architecture":
        kinds = "/".join(s.data_kinds)
        return kinds + (" (labelled)" if s.needs_labels else "")
    if entry.kind == "dataset":
        return s.kind + (" (labelled)" if s.labelled else "") + (" FORMAT:PATH" if s.takes_path else "")
    return ""


def _record(entry: Entry) -> dict:
    rec = {
        "kind": entry.kind,
        "name": entry.name,
        "summary": entry.spec.summary,
        "data": _data_of(entry),
        "plugin": entry.provider.plugin,
        "distribution": entry.provider.dist,
        "version": entry.provider.version,
    }
    if entry.kind == "architecture":
        rec["default_loss"] = entry.spec.default_loss
        rec["default_penalty"] = entry.spec.default_penalty
    return rec


@click.command("list")
@click.argument("kind", required=False)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_cmd(kind, pattern, as_json):
    """List what the installed plugins provide.

    KIND is architectures, losses, penalties or datasets (default: all); PATTERN is a glob such as
    '*gan*'.

    \b
    Examples:
      ganzoo list
      ganzoo list architectures
      ganzoo list '*gan*'
      ganzoo list datasets --json
    """
    kinds = list(KINDS)
    if kind is not None:
        if kind.lower() in _KIND_WORDS:
            kinds = [_KIND_WORDS[kind.lower()]]
        elif pattern is None:
            pattern = kind  # `ganzoo list '*gan*'`
        else:
            from ..errors import unknown

            raise unknown("kind", kind, _PLURAL.values())
    reg = _registry()
    entries = [e for k in kinds for e in reg.entries(k, pattern or "*")]
    records = [_record(e) for e in entries]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("nothing matches" + (f" '{pattern}'" if pattern else "") + " (see 'ganzoo plugins')")
        return
    for k in kinds:
        rows = [r for r in records if r["kind"] == k]
        if not rows:
            continue
        click.secho(_PLURAL[k], bold=True)
        w = max(len(r["name"]) for r in rows)
        wd = max(len(r["data"]) for r in rows)
        for r in rows:
            prov = f"{r['distribution'] or r['plugin']} {r['version']}".strip()
            data = f"  {r['data']:<{wd}}" if wd else ""
            click.echo(f"  {r['name']:<{w}}{data}  {r['summary']}  [{prov}]")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_cmd(as_json):
    """Show the installed plugins: distribution, version, hooks, and load errors.

    A plugin is ERROR when it failed to load or when one of its specs was refused (a name clash:
    built-in names are reserved, and two third-party specs with one name are both refused); WARN
    when it loaded with a likely mistake (no @ganzoo.hookimpl). GANZOO_PLUGINS=a,b loads only those
    plugins; GANZOO_STRICT_PLUGINS=1 makes load errors and warnings fatal.
    """
    reg = get_registry()
    records = [
        {"plugin": r.name, "distribution": r.provider.dist, "version": r.provider.version,
         "builtin": r.provider.builtin, "hooks": r.hooks, "error": r.error, "warning": r.warning}
        for r in sorted(reg.plugins.values(), key=lambda r: r.name)
    ]
    other = [e for e in reg.errors if not any(e.startswith(f"plugin '{r['plugin']}' ") for r in records)]
    if as_json:
        click.echo(json.dumps({"plugins": records, "errors": reg.errors, "warnings": reg.warnings}, indent=2))
        return
    for r in records:
        status = "ERROR" if r["error"] else "WARN" if r["warning"] else "ok"
        click.echo(f"{r['plugin']:<16} {r['distribution'] + ' ' + r['version']:<24} {status:<6} {', '.join(r['hooks'])}")
        for problem in (r["error"], r["warning"]):
            if problem:
                click.echo(f"    {problem}")
    for e in other:
        click.echo(f"error: {e}")
    if not records:
        click.echo("no plugins loaded (is GANZOO_PLUGINS set?)")


@click.command("info")
@click.argument("arch")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_cmd(arch, as_json):
    """Describe an architecture: hyper-parameters (types, defaults), default loss, data kinds.

    \b
    Example:
      ganzoo info vanilla
    """
    reg = _registry()
    entry = reg.entry("architecture", arch)
    s = entry.spec
    if s.size_defaults:  # a plugin's broken entry: one line here rather than at some run's size
        from ..engine.config import size_settings

        size_settings(s)
    hps = [{"name": h.name, "type": h.type.__name__, "default": h.default, "help": h.help,
            **({"choices": list(h.choices)} if h.choices else {})} for h in s.hparams]
    opt = {g: {"optimizer": o.name, "lr": o.lr, "betas": list(o.betas)} for g, o in s.optimizers.items()}
    info = {
        "name": s.name, "summary": s.summary, "paper": s.paper,
        "plugin": f"{entry.provider.dist or entry.provider.plugin} {entry.provider.version}".strip(),
        "data_kinds": list(s.data_kinds), "needs_labels": s.needs_labels, "default_data": s.default_data,
        "default_loss": s.default_loss, "default_penalty": s.default_penalty, "n_critic": s.n_critic,
        "groups": {g: list(n) for g, n in s.groups.items()}, "optimizers": opt,
        "defaults": dict(s.defaults), "data_defaults": {k: dict(v) for k, v in s.data_defaults.items()},
        "size_defaults": {str(k): dict(v) for k, v in s.size_defaults.items()}, "hparams": hps,
        "exports": [{"network": e.network, "inputs": list(e.inputs), "output": e.output, "dynamic_size": e.dynamic_size}
                    for e in s.exports],
        "incompatible": dict(s.incompatible),
        "variants": {k: dict(v) for k, v in s.variants.items()},
        "image_size": _image_size_rule(reg, s),
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    click.secho(f"{s.name} — {s.summary}", bold=True)
    if s.paper:
        click.echo(f"paper:          {s.paper}")
    click.echo(f"plugin:         {info['plugin']}")
    click.echo(f"data:           {', '.join(s.data_kinds)}{' (labelled)' if s.needs_labels else ''}; default --data {s.default_data}")
    click.echo(f"default loss:   {s.default_loss}" + (f" + penalty {s.default_penalty}" if s.default_penalty else ""))
    click.echo(f"n_critic:       {s.n_critic}")
    for g, o in opt.items():
        click.echo(f"optimizer {g}:    {o['optimizer']} lr {o['lr']:g} betas {tuple(o['betas'])}")
    if s.defaults:
        click.echo("run defaults:   " + ", ".join(f"{k}={v}" for k, v in s.defaults.items()))
    if info["image_size"]:
        click.echo(f"image size:     {info['image_size']['rule']}")
        if info["image_size"]["default_data_size"]:
            click.echo(f"                with --data {s.default_data}: {info['image_size']['default_data']}")
    for kind, settings in s.data_defaults.items():  # over the lines above for that kind of data
        click.echo(f"{'on ' + kind + ' data:':<16}" + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for size, settings in s.size_defaults.items():  # over the lines above when the run trains at that size
        click.echo(f"{f'at {size}x{size} px:':<16}" + ", ".join(f"{k}={v}" for k, v in settings.items()))
    click.echo(f"networks:       G group {list(s.groups['G'])}, D group {list(s.groups['D'])}")
    click.echo("exports:        " + ", ".join(f"{e['network']}({', '.join(e['inputs'])}{' of any size' if e['dynamic_size'] else ''})"
                                           for e in info["exports"]))
    if s.incompatible:
        for k, why in s.incompatible.items():
            click.echo(f"refuses:        {k} ({why})")
    for k, v in s.variants.items():
        click.echo(f"{'variant ' + k + ':':<15} --set variant={k} sets " + ", ".join(f"{a}={b}" for a, b in v.items()))
    click.echo("hyper-parameters (ganzoo train %s --NAME VALUE, or --set NAME=VALUE):" % s.name)
    for h in hps:
        extra = f" one of {h['choices']}" if "choices" in h else ""
        click.echo(f"  {h['name']:<16} {h['type']:<6} default {h['default']!r:<10} {h['help']}{extra}")
    if not hps:
        click.echo("  (none)")


def _image_size_rule(reg, s) -> dict:
    """How ``s`` picks its image size, and the size it trains its default data at (and why)."""
    from ..engine.image_size import MAX_NATIVE, choose

    if "image" not in s.data_kinds and "unpaired" not in s.data_kinds:
        return {}
    preferred = int(s.defaults.get("image_size") or 0)
    floor = f"{preferred}" if preferred else f"{s.min_image_size}"
    rule = (f"the data's own size when all its images share one square size of {floor} to {MAX_NATIVE} px that "
            f"{s.name} can build; else " + (f"{preferred} px ({s.name}'s preferred size)" if preferred else "the data loader's default")
            + "; --image-size N overrides")
    hp = {h.name: h.default for h in s.hparams}
    size, why = choose(reg, s, s.default_data, None, "", hp)
    return {"preferred": preferred, "max_native": MAX_NATIVE, "rule": rule, "default_data_size": size,
            "default_data": why or "not an image data set"}


__all__ = ["list_cmd", "plugins_cmd", "info_cmd", "GanzooError"]
