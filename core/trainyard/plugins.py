"""Plugin discovery: entry points in the ``trainyard.plugins`` group, loaded once.

Entry points are walked one by one (not with pluggy's
``load_setuptools_entrypoints``, which stops at the first failure) so that a broken
plugin is reported once, naming its distribution, entry point and exception, while
the others keep working. Environment switches:

- ``TRAINYARD_PLUGINS_AUTOLOAD=0``: load no plugin at all;
- ``TRAINYARD_DISABLE_PLUGINS=a,b``: skip these plugins (entry-point or distribution names);
- ``TRAINYARD_STRICT_PLUGINS=1``: a plugin failure raises :class:`PluginError`
  (for a plugin's own CI).
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import pluggy

from trainyard import hookspecs
from trainyard.errors import PluginError
from trainyard.registry import Origin

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from trainyard.registry import Registry

__all__ = ["hookimpl", "PluginRecord", "load_plugins", "plugin_records", "failed_plugins", "fill_registry", "plugin_listing"]

ENTRY_POINT_GROUP = "trainyard.plugins"
hookimpl = pluggy.HookimplMarker("trainyard")
logger = logging.getLogger("trainyard.plugins")


@dataclass
class PluginRecord:
    """What trainyard knows of one entry point: where it comes from and how loading went."""

    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    status: str = "loaded"  # loaded | failed | disabled
    problems: list[str] = field(default_factory=list)

    @property
    def origin(self) -> Origin:
        return Origin(self.name, self.distribution, self.version)


class _PluginState:
    def __init__(self) -> None:
        self.manager: pluggy.PluginManager | None = None
        self.records: dict[str, PluginRecord] = {}


_state = _PluginState()


def _env_flag(name: str, default: str) -> str:
    return os.environ.get(name, default).strip().lower()


def _strict() -> bool:
    return _env_flag("TRAINYARD_STRICT_PLUGINS", "0") in ("1", "true", "yes")


def _report(record: PluginRecord, problem: str, exc: BaseException | None = None) -> None:
    """Report a plugin problem once; in strict mode raise instead."""
    record.problems.append(problem)
    message = (
        f"plugin '{record.name}' (distribution {record.distribution or '?'} "
        f"{record.version or ''}, entry point '{record.name} = {record.entry_point}') {problem}"
    )
    if _strict():
        raise PluginError(message + " [TRAINYARD_STRICT_PLUGINS=1]") from exc
    logger.warning("trainyard: %s", message)


def load_plugins() -> pluggy.PluginManager:
    """Load every enabled plugin once per process and return the plugin manager."""
    if _state.manager is not None:
        return _state.manager
    manager = pluggy.PluginManager("trainyard")
    manager.add_hookspecs(hookspecs)
    _state.manager = manager
    if _env_flag("TRAINYARD_PLUGINS_AUTOLOAD", "1") in ("0", "false", "no"):
        return manager
    from importlib.metadata import entry_points

    disabled = {n.strip() for n in os.environ.get("TRAINYARD_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        _load_one(manager, entry_point, disabled)
    return manager


def _load_one(manager: pluggy.PluginManager, entry_point: EntryPoint, disabled: set[str]) -> None:
    dist = entry_point.dist
    dist_name = dist.metadata["Name"] if dist is not None else None
    record = PluginRecord(
        name=entry_point.name,
        entry_point=entry_point.value,
        distribution=dist_name,
        version=dist.version if dist is not None else None,
    )
    if record.name in _state.records:
        first = _state.records[record.name]
        record.name = f"{entry_point.name}[{dist_name}]"
        logger.warning(
            "trainyard: plugin name '%s' is used by distributions %s and %s; the second is "
            "loaded as '%s'. Rename one of the entry points.",
            entry_point.name, first.distribution, dist_name, record.name,
        )
    _state.records[record.name] = record
    if record.name in disabled or entry_point.name in disabled or (dist_name or "") in disabled:
        record.status = "disabled"
        return
    try:
        module = entry_point.load()
    except Exception as exc:
        record.status = "failed"
        _report(record, f"failed to import: {type(exc).__name__}: {exc}", exc)
        return
    for name in _misspelt_hooks(module):
        guess = difflib.get_close_matches(name, hookspecs.HOOK_NAMES, 1)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        _report(record, f"implements '{name}', which is not a trainyard hook{hint}")
    try:
        manager.register(module, name=record.name)
    except Exception as exc:
        record.status = "failed"
        _report(record, f"has invalid hook implementations: {type(exc).__name__}: {exc}", exc)


def _misspelt_hooks(module: ModuleType) -> list[str]:
    return [
        name
        for name in dir(module)
        if getattr(getattr(module, name), "trainyard_impl", None) is not None
        and name not in hookspecs.HOOK_NAMES
    ]


def fill_registry(registry: Registry, sources: tuple[tuple[str, str], ...] = ()) -> None:
    """Fill a root registry: library sources first, then each plugin through its own view."""
    for module_name, base_path in sources:
        _register_module_members(registry, module_name, base_path)
    if registry.hookspec is None:
        return
    manager = load_plugins()
    caller = getattr(manager.hook, registry.hookspec)
    for impl in reversed(caller.get_hookimpls()):
        record = _state.records.get(impl.plugin_name)
        view = registry.view(record.origin if record else Origin(impl.plugin_name))
        try:
            impl.function(**dict.fromkeys(impl.argnames, view))
        except Exception as exc:
            if record is None:
                raise
            record.status = "failed"
            _report(record, f"raised in {registry.hookspec}: {type(exc).__name__}: {exc}", exc)


def _register_module_members(registry: Registry, module_name: str, base_path: str) -> None:
    """Register the public subclasses of ``base_path`` found in ``module_name``."""
    base_module, _, base_name = base_path.partition(":")
    module = importlib.import_module(module_name)
    base = getattr(importlib.import_module(base_module), base_name)
    top = module_name.partition(".")[0]
    version = getattr(importlib.import_module(top), "__version__", None)
    origin = Origin(top, top, str(version) if version else None)
    for name in getattr(module, "__all__", dir(module)):
        member = getattr(module, name, None)
        if isinstance(member, type) and issubclass(member, base) and member is not base and not name.startswith("_"):
            if name not in registry:
                registry.register(member, name=name, origin=origin)


def plugin_records() -> list[PluginRecord]:
    """Every plugin entry point seen, loaded or not, in discovery order."""
    load_plugins()
    return list(_state.records.values())


def failed_plugins() -> list[str]:
    """One line per plugin that failed, for error messages."""
    return [f"{r.name} ({'; '.join(r.problems)})" for r in _state.records.values() if r.status == "failed"]


def plugin_listing() -> list[str]:
    """What ``trainyard plugins`` prints: each plugin, its distribution and version, problems, what it registered, the configs it ships.

    Components registered by trainyard itself or by an imported library (not through an
    entry point) are listed after the plugins, under their origin.
    """
    from trainyard.registry import ROOT_REGISTRIES

    by_plugin: dict[str, dict[str, list[str]]] = {}
    origins = {}
    for registry in ROOT_REGISTRIES:
        for entry in registry.entries():
            by_plugin.setdefault(entry.origin.plugin, {}).setdefault(registry.kind, []).append(entry.name)
            origins.setdefault(entry.origin.plugin, entry.origin)
    lines = []
    for record in plugin_records():
        lines.append(f"{record.name}  [{record.status}]  {record.distribution or '?'} {record.version or ''}".rstrip())
        lines.append(f"  entry point: {record.name} = {record.entry_point}")
        lines.extend(f"  problem: {p}" for p in record.problems)
        lines.extend(_registered_lines(by_plugin.pop(record.name, {})))
        lines.extend(_config_lines(record.name))
    for plugin, registered in sorted(by_plugin.items()):
        origin = origins[plugin]
        label = "built in" if plugin == "trainyard" else (
            f"library {origin.distribution} {origin.version or ''}".rstrip() if origin.distribution else "registered by import")
        lines.append(f"{plugin}  [{label}]")
        lines.extend(_registered_lines(registered))
        lines.extend(_config_lines(plugin))
    return lines


def _registered_lines(registered: dict[str, list[str]]) -> list[str]:
    if not registered:
        return ["  registers nothing"]
    return [f"  {kind} ({len(names)}): {', '.join(sorted(names))}" for kind, names in registered.items()]


def _config_lines(scope: str, shown: int = 4) -> list[str]:
    """The configs a plugin's package ships, by the names ``_base_`` takes (runnable ones first)."""
    from trainyard.config_scopes import shipped_configs

    names = sorted(shipped_configs(scope), key=lambda name: ("_base_/" in name, name))
    if not names:
        return []
    return [f"  configs ({len(names)}): {', '.join(names[:shown])}" + (", ..." if len(names) > shown else "")]
