"""The plugin registry: discovers architectures, losses, penalties and data sets through pluggy and
the ``ganzoo`` entry-point group.

* Entry points are loaded one at a time. One that fails to import, misspells a hook, or returns an
  invalid spec is recorded (``ganzoo plugins`` shows it, a warning goes once to stderr) and the rest
  keep working. ``GANZOO_STRICT_PLUGINS=1`` turns those failures into errors (for plugin authors).
* ``GANZOO_PLUGINS=a,b`` loads only the named entry points or distributions (empty: none).
* Two specs of one kind with one name are refused, naming both providers; the first one stays.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .errors import GanzooError, PluginError, unknown
from .specs import DATA_KINDS, SPEC_TYPES, ArchitectureSpec, DatasetSpec

ENTRY_POINT_GROUP = "ganzoo"
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


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class Registry:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.errors: list[str] = []
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._warned = False

    # -- loading ----------------------------------------------------------------------------------
    def load_entry_points(self, allow: Iterable[str] | None = None) -> None:
        if allow is None and ALLOW_ENV in os.environ:
            allow = [a.strip() for a in os.environ[ALLOW_ENV].split(",") if a.strip()]
        allowed = None if allow is None else set(allow)
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        seen: set[tuple[str, str]] = set()
        for ep in eps:
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ""
            if allowed is not None and ep.name not in allowed and dist_name not in allowed:
                continue
            if (dist_name, ep.name) in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add((dist_name, ep.name))
            # Entry-point names are per distribution: qualify one that another distribution took.
            name = ep.name if ep.name not in self.plugins else f"{dist_name}:{ep.name}"
            provider = Provider(name, dist_name, dist.version if dist is not None else "")
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
        record = PluginRecord(name, provider)
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
        self.plugins[name] = record
        for entry in collected:
            table = self._entries[entry.kind]
            if entry.name in table:
                other = table[entry.name].provider
                self._fail(
                    None,
                    f"duplicate {entry.kind} '{entry.name}': provided by both {other} and {provider}; "
                    f"keeping {other}",
                )
                continue
            table[entry.name] = entry
        return record

    def unregister(self, name: str) -> None:
        obj = self.pm.get_plugin(name)
        if obj is not None:
            self.pm.unregister(obj)
        self.plugins.pop(name, None)
        for table in self._entries.values():
            for key in [k for k, e in table.items() if e.provider.plugin == name]:
                del table[key]

    def _fail(self, record: PluginRecord | None, message: str) -> None:
        message = " ".join(message.split())  # one line, whatever the exception said
        if record is not None:
            record.error = message
            self.plugins[record.name] = record
            message = f"plugin '{record.name}' ({record.provider}) {message}"
        self.errors.append(message)
        if _strict():
            raise PluginError(message + f" [{STRICT_ENV}=1]")

    def warn_errors(self) -> None:
        """Print load errors once per process (the CLI calls this)."""
        if self.errors and not self._warned:
            self._warned = True
            for msg in self.errors:
                print(f"ganzoo: warning: {msg} (see 'ganzoo plugins')", file=sys.stderr)

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
            if self.errors:
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


def reset_registry() -> None:
    """Forget the process-wide registry (tests; after changing GANZOO_PLUGINS)."""
    global _REGISTRY
    _REGISTRY = None
