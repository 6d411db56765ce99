"""The plugin registry: discovers architectures, losses, penalties and data sets through pluggy and
the ``ganzoo`` entry-point group.

* Entry points are loaded one at a time. One that fails to import, misspells a hook, returns an
  invalid spec, or hands the engine a callable it cannot call (``g_loss`` whose arity does not match
  ``g_uses_real``, a penalty ``fn`` without ``generator=`` ...) is recorded (``ganzoo plugins`` shows
  it, a warning goes once to stderr) and the rest keep working. A module without any
  ``@ganzoo.hookimpl`` gets a warning ("did you forget @ganzoo.hookimpl?").
  ``GANZOO_STRICT_PLUGINS=1`` turns all of these into errors (for plugin authors).
* ``GANZOO_PLUGINS=a,b`` loads only the named entry points or distributions (empty: none).
* Names never silently change what a user trains. The built-ins (entry points of the ``ganzoo``
  distribution itself) reserve their spec names: a third-party spec reusing one is refused, whatever
  the loading order. Two third-party specs of one kind with one name are both refused, naming both
  distributions. Every plugin involved is marked failing, with the reason; its other specs load.
* Entry-point names never rename a built-in: a third-party entry point whose name a built-in (or
  another distribution) uses is registered as ``DIST:NAME``.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import GanzooError, PluginError, unknown
from .specs import DATA_KINDS, SPEC_TYPES, ArchitectureSpec, DatasetSpec, LossSpec, PenaltySpec

ENTRY_POINT_GROUP = "ganzoo"
BUILTIN_DIST = "ganzoo"  # the distribution whose entry points are the built-in plugins
BUILTIN_PACKAGE = "ganzoo_plugins"
STRICT_ENV = "GANZOO_STRICT_PLUGINS"
ALLOW_ENV = "GANZOO_PLUGINS"
KINDS = ("architecture", "loss", "penalty", "dataset")
_HOOKS = {
    "architecture": "ganzoo_architectures",
    "loss": "ganzoo_losses",
    "penalty": "ganzoo_penalties",
    "dataset": "ganzoo_datasets",
}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class Provider:
    plugin: str  # entry-point / registration name
    dist: str  # distribution name ("" for objects registered in-process)
    version: str
    builtin: bool = False  # shipped in the ganzoo distribution itself: its spec names are reserved

    def __str__(self) -> str:
        return f"{self.dist or self.plugin} {self.version}".strip()


@dataclass(frozen=True)
class Entry:
    kind: str
    spec: Any
    provider: Provider

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class PluginRecord:
    name: str
    provider: Provider
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None
    # modules whose frames belong to this plugin (the plugin module, and where its spec callables
    # live): a failure during a run is pinned on the plugin whose frame is innermost in the traceback
    modules: tuple[str, ...] = ()


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        # (kind, name) -> the third-party entries refused because they clash with each other
        self._contested: dict[str, dict[str, list[Entry]]] = {k: {} for k in KINDS}
        self._warned = False

    # -- loading ----------------------------------------------------------------------------------
    def load_entry_points(self, allow: Iterable[str] | None = None) -> None:
        if allow is None and ALLOW_ENV in os.environ:
            allow = [a.strip() for a in os.environ[ALLOW_ENV].split(",") if a.strip()]
        allowed = None if allow is None else set(allow)
        found = []
        seen: set[tuple[str, str]] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ""
            if (dist_name, ep.name) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((dist_name, ep.name))
            builtin = dist_name == BUILTIN_DIST or (not dist_name and ep.value.split(".")[0] == BUILTIN_PACKAGE)
            found.append((ep, dist, dist_name, builtin))
        builtin_names = {ep.name for ep, _, _, b in found if b}
        dists_per_name = Counter(ep.name for ep, _, _, b in found if not b)
        for ep, dist, dist_name, builtin in found:
            # Entry-point names are per distribution: a third-party one whose name a built-in or another
            # distribution also uses is qualified, so it can never take (or rename) another's name.
            shared = ep.name in builtin_names or dists_per_name[ep.name] > 1
            name = ep.name if builtin or not shared else f"{dist_name or ep.value}:{ep.name}"
            if allowed is not None and not (
                name in allowed or dist_name in allowed or (ep.name in allowed and (builtin or ep.name not in builtin_names))
            ):
                continue
            provider = Provider(name, dist_name, dist.version if dist is not None else "", builtin)
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break the CLI
                self._fail(PluginRecord(name, provider), f"failed to import {ep.value}: {type(exc).__name__}: {exc}")
                continue
            self.register(module, name, provider)

    def register(self, obj: Any, name: str, provider: Provider | None = None) -> PluginRecord:
        """Register a plugin object (module or instance with hookimpls) and collect its specs."""
        provider = provider or Provider(name, "", "")
        if name in self.plugins or self.pm.has_plugin(name):
            raise ValueError(f"a plugin named {name!r} is already registered; unregister it first")
        record = PluginRecord(name, provider, modules=(_module_of(obj),))
        unknown_hooks = [h for h in _marked(self.pm, obj) if h not in hookspecs.HOOK_NAMES]
        if unknown_hooks:
            self._fail(record, "invalid hooks: " + "; ".join(
                f"unknown hook '{h}'{_hook_hint(h)}" for h in unknown_hooks))
            return record
        try:
            self.pm.register(obj, name=name)
            self.pm.check_pending()
        except Exception as exc:
            if self.pm.is_registered(obj):
                self.pm.unregister(obj)
            self._fail(record, f"invalid hooks: {exc}")
            return record
        record.hooks = sorted(h.name for h in self.pm.get_hookcallers(obj) or [])
        collected: list[Entry] = []
        try:
            for kind, hook in _HOOKS.items():
                for impl in getattr(self.pm.hook, hook).get_hookimpls():
                    if impl.plugin is not obj:
                        continue
                    result = impl.function()
                    if result is None:
                        continue
                    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
                        raise TypeError(f"{hook}() must return a list of specs, got {type(result).__name__}")
                    for spec in list(result):
                        _validate(kind, spec)
                        collected.append(Entry(kind, spec, provider))
        except Exception as exc:
            self.pm.unregister(obj)
            self._fail(record, f"returned an invalid spec: {exc}")
            return record
        record.modules = tuple(dict.fromkeys(record.modules + tuple(m for e in collected for m in _spec_modules(e.spec))))
        self.plugins[name] = record
        forgotten = _undecorated(self.pm, obj)
        if not record.hooks or forgotten:
            what = ", ".join(f"{f}(){_hook_hint(f)}" for f in forgotten)
            self._warn(record, ("implements no hook" if not record.hooks else f"does not register {what}")
                       + ": did you forget @ganzoo.hookimpl?"
                       + (f" (it defines {what} without it)" if forgotten and not record.hooks else ""))
        for entry in collected:
            self._claim(entry)
        return record

    def _claim(self, entry: Entry) -> None:
        """Add ``entry`` to its table, or refuse what clashes: built-in names are reserved; two
        third-party specs with one name are both refused. The result does not depend on the order."""
        table, contested = self._entries[entry.kind], self._contested[entry.kind]
        current = table.get(entry.name)
        what = f"{entry.kind} '{entry.name}'"
        if current is None and entry.name not in contested:
            table[entry.name] = entry
        elif current is not None and current.provider.builtin:
            self._refuse(entry, f"{what} is a built-in name of {current.provider} and cannot be replaced; "
                                f"the one from {entry.provider} is refused (rename it in that plugin)")
        elif entry.provider.builtin:
            table[entry.name] = entry
            if current is not None:
                self._refuse(current, f"{what} is a built-in name of {entry.provider} and cannot be replaced; "
                                      f"the one from {current.provider} is refused (rename it in that plugin)")
        else:
            rivals = ([current] if current is not None else []) + contested.get(entry.name, []) + [entry]
            contested[entry.name] = rivals
            names = " and ".join(str(e.provider) for e in rivals)
            msg = (f"duplicate {what}: provided by both {names}; all are refused so that neither silently "
                   "replaces the other (uninstall one, or rename the spec in one plugin)")
            for e in rivals if current is not None else [entry]:
                self._refuse(e, msg)

    def _refuse(self, entry: Entry, message: str) -> None:
        table = self._entries[entry.kind]
        if table.get(entry.name) is entry:
            del table[entry.name]
        record = self.plugins.get(entry.provider.plugin)
        if record is not None and record.error:  # already failing: add the reason
            record.error = f"{record.error}; {message}"
            self._report(f"plugin '{record.name}' ({record.provider}) {message}")
        else:
            self._fail(record, message)

    def unregister(self, name: str) -> None:
        obj = self.pm.get_plugin(name)
        if obj is not None:
            self.pm.unregister(obj)
        self.plugins.pop(name, None)
        for table in self._entries.values():
            for key in [k for k, e in table.items() if e.provider.plugin == name]:
                del table[key]
        for contested in self._contested.values():
            for key, rivals in list(contested.items()):
                contested[key] = [e for e in rivals if e.provider.plugin != name]

    def _fail(self, record: PluginRecord | None, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the exception said
        if record is not None:
            record.error = message
            self.plugins[record.name] = record
            message = f"plugin '{record.name}' ({record.provider}) {message}"
        self._report(message)

    def _report(self, message: str) -> None:
        self.errors.append(message)
        if _strict():
            raise PluginError(message + f" [{STRICT_ENV}=1]")

    def _warn(self, record: PluginRecord, message: str) -> None:
        record.warning = " ".join(message.split())
        message = f"plugin '{record.name}' ({record.provider}) {record.warning}"
        if _strict():
            self._fail(record, record.warning)
        self.warnings.append(message)

    def warn_errors(self) -> None:
        """Print load errors and warnings once per process (the CLI calls this)."""
        if (self.errors or self.warnings) and not self._warned:
            self._warned = True
            for msg in self.errors + self.warnings:
                print(f"ganzoo: warning: {msg} (see 'ganzoo plugins')", file=sys.stderr)

    def blame(self, exc: BaseException) -> PluginRecord | None:
        """The plugin whose code raised ``exc``: the innermost traceback frame in one of its modules."""
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_globals.get("__name__", ""))
            tb = tb.tb_next
        for module in reversed(frames):
            best = None
            for rec in self.plugins.values():
                for m in rec.modules:
                    if m and (module == m or module.startswith(m + ".")) and (best is None or len(m) > best[0]):
                        best = (len(m), rec)
            if best is not None:
                return best[1]
        return None

    # -- lookup -----------------------------------------------------------------------------------
    def entries(self, kind: str, pattern: str = "*") -> list[Entry]:
        table = self._entries[_kind(kind)]
        return [table[n] for n in sorted(table) if fnmatch.fnmatch(n, pattern)]

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[_kind(kind)])

    def entry(self, kind: str, name: str) -> Entry:
        kind = _kind(kind)
        table = self._entries[kind]
        if name not in table:
            hint = "see 'ganzoo list'"
            if self.errors or self.warnings:
                hint += "; some plugins failed to load, see 'ganzoo plugins'"
            raise unknown(kind, name, table, hint)
        return table[name]

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).spec

    # timm-like facade
    def list_architectures(self, pattern: str = "*") -> list[str]:
        return [e.name for e in self.entries("architecture", pattern)]

    def create(self, name: str, info: Any, **overrides: Any) -> dict[str, Any]:
        """Build an architecture's networks for data ``info`` with hyper-parameter overrides."""
        spec: ArchitectureSpec = self.get("architecture", name)
        hp = {h.name: h.default for h in spec.hparams}
        for key, value in overrides.items():
            h = spec.hparam(key)
            if h is None:
                raise unknown(f"hyper-parameter of '{name}'", key, hp)
            try:
                hp[key] = h.parse(value)
            except (TypeError, ValueError) as exc:
                raise GanzooError(f"hyper-parameter '{key}' of '{name}': {exc}; it is a {h.type.__name__}") from None
        return dict(spec.build(info, hp))


def _kind(kind: str) -> str:
    k = kind.rstrip("s") if kind not in KINDS else kind
    aliases = {"arch": "architecture", "architecture": "architecture", "loss": "loss", "losse": "loss",
               "penalty": "penalty", "penaltie": "penalty", "dataset": "dataset", "data": "dataset"}
    if k in aliases:
        return aliases[k]
    raise unknown("kind", kind, ["architectures", "losses", "penalties", "datasets"])


def _validate(kind: str, spec: Any) -> None:
    cls = SPEC_TYPES[kind]
    if not isinstance(spec, cls):
        raise TypeError(f"expected {cls.__name__} from the {kind} hook, got {type(spec).__name__}")
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise ValueError(f"{kind} name {spec.name!r} must be lower-case letters, digits, '-', '_' or '.'")
    if not spec.summary:
        raise ValueError(f"{kind} '{spec.name}' needs a summary")
    if isinstance(spec, ArchitectureSpec):
        if not callable(spec.build) or not callable(spec.make_step):
            raise ValueError(f"architecture '{spec.name}': build and make_step must be callable")
        if set(spec.groups) != {"G", "D"}:
            raise ValueError(f"architecture '{spec.name}': groups must be exactly 'G' and 'D'")
        bad = [k for k in spec.data_kinds if k not in DATA_KINDS]
        if bad or not spec.data_kinds:
            raise ValueError(f"architecture '{spec.name}': data_kinds must be among {DATA_KINDS}")
        if spec.n_critic < 1:
            raise ValueError(f"architecture '{spec.name}': n_critic must be >= 1")
    if isinstance(spec, DatasetSpec):
        if spec.kind not in DATA_KINDS:
            raise ValueError(f"dataset '{spec.name}': kind must be one of {DATA_KINDS}")
        if not callable(spec.load):
            raise ValueError(f"dataset '{spec.name}': load must be callable")
    for attr in ("d_loss", "g_loss", "fn"):
        if hasattr(spec, attr) and not callable(getattr(spec, attr)):
            raise ValueError(f"{kind} '{spec.name}': {attr} must be callable")
    for attr, call, hint in _calls(spec):
        why = _cannot_call(getattr(spec, attr), call)
        if why:
            raise ValueError(f"{kind} '{spec.name}': the engine calls {attr}{_show(call)}, but {why}{hint}")


# How the engine calls each callable of a spec: positional argument names, then keyword names.
def _calls(spec: Any) -> list[tuple[str, tuple[tuple[str, ...], tuple[str, ...]], str]]:
    if isinstance(spec, ArchitectureSpec):
        out = [("build", (("info", "hp"), ()), ""), ("make_step", (("hp",), ()), "")]
        if spec.lr_factor is not None:
            out.append(("lr_factor", (("step", "total_steps"), ()), ""))
        if spec.critic_constraint is not None:
            out.append(("critic_constraint", (("hp",), ()), ""))
        return out
    if isinstance(spec, LossSpec):
        if spec.g_uses_real:
            g = ("g_loss", (("fake_out", "real_out"), ()), " (g_uses_real=True)")
        else:
            g = ("g_loss", (("fake_out",), ()), "; set g_uses_real=True if it compares fake with real outputs")
        return [("d_loss", (("real_out", "fake_out"), ()), ""), g]
    if isinstance(spec, PenaltySpec):
        return [("fn", (("critic", "real", "fake"), ("generator",)), "; add generator=None to its parameters")]
    if isinstance(spec, DatasetSpec):
        return [("load", (("request",), ()), "")]
    return []


def _show(call: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return "(" + ", ".join(list(call[0]) + [f"{k}=..." for k in call[1]]) + ")"


def _cannot_call(fn: Any, call: tuple[tuple[str, ...], tuple[str, ...]]) -> str | None:
    """Why ``fn`` cannot be called with these arguments (``inspect.signature``), or None."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return None
    try:
        sig.bind(*call[0], **{k: None for k in call[1]})
    except TypeError as exc:
        return f"its signature is {getattr(fn, '__name__', type(fn).__name__)}{sig} ({exc})"
    return None


def _marked(pm: pluggy.PluginManager, obj: Any) -> list[str]:
    """Names of the attributes of ``obj`` marked with ``@ganzoo.hookimpl``."""
    out = []
    for attr in dir(obj):
        try:
            if pm.parse_hookimpl_opts(obj, attr) is not None:
                out.append(attr)
        except Exception:  # an attribute that cannot be read is no hook
            continue
    return out


def _undecorated(pm: pluggy.PluginManager, obj: Any) -> list[str]:
    """Functions named like hooks (``ganzoo_*``) that lack ``@ganzoo.hookimpl``."""
    marked = set(_marked(pm, obj))
    out = []
    for attr in dir(obj):
        if attr.startswith("ganzoo_") and attr not in marked:
            value = getattr(obj, attr, None)
            if inspect.isfunction(value) or inspect.ismethod(value):
                out.append(attr)
    return out


def _hook_hint(name: str) -> str:
    if name in hookspecs.HOOK_NAMES:
        return ""
    close = difflib.get_close_matches(name, hookspecs.HOOK_NAMES, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f" (hooks are {', '.join(hookspecs.HOOK_NAMES)})"


def _module_of(obj: Any) -> str:
    return obj.__name__ if inspect.ismodule(obj) else type(obj).__module__


def _spec_modules(spec: Any) -> list[str]:
    out = []
    for value in vars(spec).values():
        module = getattr(value, "__module__", None)
        if callable(value) and isinstance(module, str) and not module.startswith(("ganzoo.", "torch", "builtins")):
            out.append(module)
    return out


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loading entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        reg = Registry()
        _REGISTRY = reg
        try:
            reg.load_entry_points()
        except Exception:
            _REGISTRY = None
            raise
    return _REGISTRY


def loaded_registry() -> Registry | None:
    """The process-wide registry if something loaded it already, else None (loads nothing)."""
    return _REGISTRY


def reset_registry() -> None:
    """Forget the process-wide registry (tests; after changing GANZOO_PLUGINS)."""
    global _REGISTRY
    _REGISTRY = None


def set_registry(registry: Registry | None) -> Registry | None:
    """Make ``registry`` the process-wide one (what the CLI and ``ganzoo.train`` use); returns the
    previous one. The test kit's ``ganzoo_registry`` fixture uses it."""
    global _REGISTRY
    previous, _REGISTRY = _REGISTRY, registry
    return previous
