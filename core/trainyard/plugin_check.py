"""``trainyard plugins --check NAME``: everything a plugin registered, loaded and built once.

For a plugin's own CI. Listing a plugin imports only its entry module; this check
goes further: any problem the plugin had while loading (an import error, a
misspelt hook, a hook that raised) fails it, as ``TRAINYARD_STRICT_PLUGINS=1``
would, but other installed plugins' problems do not. Each lazy entry is imported,
and each component whose constructor needs no argument is built with none.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trainyard.errors import ConfigError, TrainyardError

if TYPE_CHECKING:
    from trainyard.registry import Entry, Registry

__all__ = ["ComponentCheck", "PluginCheck", "check_plugin"]

BUILT, NEEDS_ARGUMENTS, NOT_BUILDABLE, FAILED = "built", "needs arguments", "not built", "FAILED"


@dataclass
class ComponentCheck:
    kind: str
    name: str
    outcome: str
    detail: str = ""


@dataclass
class PluginCheck:
    name: str
    header: str
    problems: list[str] = field(default_factory=list)
    components: list[ComponentCheck] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(c.outcome == FAILED for c in self.components)

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.components)

    def lines(self) -> list[str]:
        lines = [self.header, *(f"  problem: {p}" for p in self.problems)]
        width = max((len(c.name) for c in self.components), default=0)
        for c in self.components:
            lines.append(f"  {c.kind:<12} {c.name:<{width}}  {c.outcome}" + (f": {c.detail}" if c.detail else ""))
        if not self.components:
            lines.append("  registers nothing")
        lines.append(
            f"{self.name}: {self.count(BUILT)} built, {self.count(NEEDS_ARGUMENTS)} need arguments, "
            f"{self.count(NOT_BUILDABLE)} not built without a config, "
            f"{self.count(FAILED) + len(self.problems)} failed"
        )
        return lines


def check_plugin(name: str) -> PluginCheck:
    """Load, import and build what plugin ``name`` (its entry-point or distribution name) registers."""
    from trainyard.plugins import plugin_records
    from trainyard.registry import ROOT_REGISTRIES

    records = plugin_records()
    record = next((r for r in records if name in (r.name, r.distribution)), None)
    if record is None:
        known = ", ".join(f"{r.name} ({r.distribution})" for r in records) or "none"
        raise ConfigError(f"no installed plugin is called '{name}'; installed plugins: {known}")
    header = f"{record.name}  [{record.status}]  {record.distribution or '?'} {record.version or ''}".rstrip()
    report = PluginCheck(record.name, header)
    if record.status == "disabled":
        report.problems.append("disabled by TRAINYARD_DISABLE_PLUGINS; unset it to check this plugin")
        return report
    for registry in ROOT_REGISTRIES:
        for entry in registry.entries():  # fills the registry: a hook that raises is recorded now
            if entry.origin.plugin == record.name:
                report.components.append(_check_entry(registry, entry))
    report.problems.extend(record.problems)
    return report


def _check_entry(registry: Registry, entry: Entry) -> ComponentCheck:
    result = ComponentCheck(registry.kind, entry.name, BUILT)
    try:
        target = entry.load(registry.kind) if entry.lazy_path is not None else entry.target
    except TrainyardError as exc:
        result.outcome, result.detail = FAILED, str(exc)
        return result
    required = _required_arguments(target)
    if required is None:
        result.outcome, result.detail = NOT_BUILDABLE, "not a class or function"
        return result
    if required:
        result.outcome, result.detail = NEEDS_ARGUMENTS, ", ".join(required)
        return result
    try:
        registry.build({"type": entry.qualified_name})
    except TrainyardError as exc:  # a missing data folder, say: the component works, the defaults do not
        result.outcome, result.detail = NOT_BUILDABLE, str(exc)
    except Exception as exc:
        result.outcome, result.detail = FAILED, f"building it with no arguments raised {type(exc).__name__}: {exc}"
    return result


def _required_arguments(target: Any) -> list[str] | None:
    """Parameters without a default, or None for something that cannot be called to build."""
    if not callable(target):
        return None
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    return [
        p.name for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
