"""Component registries: names in a config resolved to classes and functions.

A registry maps a name to a component and remembers where each entry came from.
Entries may be lazy (``'package.module:Attr'``) so that listing names and checking a
config import nothing. Plugins fill the root registries the first time a registry is
looked up (see :mod:`trainyard.plugins`), each through its own view so that every
entry records its plugin, distribution and version.

Two plugins may register the same name: both stay reachable as ``'<plugin>.<Name>'``
and the plain name becomes an error that lists both.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainyard import openmmlab_names
from trainyard.errors import RegistryError

__all__ = [
    "Origin",
    "Entry",
    "Registry",
    "ModelRegistry",
    "building",
    "MODELS",
    "DATASETS",
    "TRANSFORMS",
    "METRICS",
    "HOOKS",
    "LOOPS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DATA_SAMPLERS",
    "COLLATE_FUNCTIONS",
    "ROOT_REGISTRIES",
    "TASKS",
]


@dataclass(frozen=True)
class Origin:
    """Who registered an entry: the plugin name and, when installed, its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.distribution is None:
            return self.plugin
        return f"{self.plugin} ({self.distribution} {self.version})"


CORE = Origin("trainyard")


@dataclass
class Entry:
    """One registered component; ``target`` is filled when a lazy entry is imported."""

    name: str
    origin: Origin
    target: Any = None
    lazy_path: str | None = None
    _loaded: bool = field(default=False, repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.origin.plugin}.{self.name}"

    @property
    def location(self) -> str:
        """Where the component lives, without importing it."""
        if self.lazy_path is not None:
            return self.lazy_path
        module = getattr(self.target, "__module__", "?")
        return f"{module}:{getattr(self.target, '__qualname__', self.name)}"

    def load(self, kind: str) -> Any:
        if not self._loaded:
            module_name, _, attr = self.lazy_path.partition(":")
            try:
                obj = importlib.import_module(module_name)
                for part in attr.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise RegistryError(
                    f"{kind}: '{self.name}' registered by {self.origin} points to "
                    f"'{self.lazy_path}', which cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.target, self._loaded = obj, True
        return self.target


_BUILD_KEY: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "trainyard_build_key", default=()
)


@contextlib.contextmanager
def building(key: str) -> Iterator[None]:
    """Name the config key being built, so that a build error can say where it came from.

    Nested uses append: ``building('train_dataloader')`` then ``building('dataset')``
    reports ``train_dataloader.dataset``.
    """
    token = _BUILD_KEY.set(_BUILD_KEY.get() + (key,))
    try:
        yield
    finally:
        _BUILD_KEY.reset(token)


def _current_key() -> str:
    return ".".join(_BUILD_KEY.get()).replace(".[", "[")


class Registry:
    """A mapping from names to components, with lazy entries, origins and clear errors.

    Args:
        kind: what the registry holds, used in messages (``'MODELS'``).
        hookspec: the plugin hook that fills it (``'register_models'``); plugins are
            loaded and asked the first time the registry is looked up.
        sources: ``(module, base_class_path)`` pairs whose public subclasses of the
            base are registered on first lookup (torch optimizers, torchvision
            transforms), so that nothing is imported before it is needed.
    """

    def __init__(
        self,
        kind: str,
        hookspec: str | None = None,
        sources: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.kind = kind
        self.hookspec = hookspec
        self._sources = sources
        self._by_name: dict[str, list[Entry]] = {}
        self._by_qualified: dict[str, Entry] = {}
        self._populated = hookspec is None and not sources

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._by_qualified)} entries)"

    # registration -----------------------------------------------------------

    def register(
        self,
        obj: Any = None,
        *,
        name: str | None = None,
        force: bool = False,
        origin: Origin | None = None,
    ) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Usable as ``@REG.register()``, ``@REG.register`` or ``REG.register(obj, name=...)``.
        """
        if obj is None:
            return lambda target: self.register(target, name=name, force=force, origin=origin)
        if not callable(obj):
            raise TypeError(f"{self.kind}: only classes and callables can be registered, got {obj!r}")
        entry_name = name or obj.__name__
        origin = origin or _origin_of_module(getattr(obj, "__module__", None))
        self._add(Entry(entry_name, origin, target=obj, _loaded=True), force)
        return obj

    def register_lazy(
        self, name: str, path: str, *, force: bool = False, origin: Origin | None = None
    ) -> None:
        """Register ``'package.module:Attr'`` under ``name``; it is imported on first use."""
        if ":" not in path:
            raise ValueError(f"{self.kind}: lazy path must look like 'package.module:Attr', got {path!r}")
        origin = origin or _origin_of_module(path.partition(":")[0])
        self._add(Entry(name, origin, lazy_path=path), force)

    def register_lazy_many(self, components: Mapping[str, str], *, origin: Origin | None = None) -> None:
        """:meth:`register_lazy` for each ``{name: 'package.module:Attr'}`` of a plugin's table."""
        for name, path in components.items():
            self.register_lazy(name, path, origin=origin)

    def view(self, origin: Origin) -> RegistryView:
        """A view that registers with ``origin``: what each plugin receives."""
        return RegistryView(self, origin)

    def _add(self, entry: Entry, force: bool) -> None:
        if not entry.name or "." in entry.name:
            raise ValueError(f"{self.kind}: invalid name {entry.name!r} (no dots: they qualify names)")
        qualified = entry.qualified_name
        existing = self._by_qualified.get(qualified)
        if existing is not None:
            if not force:
                raise RegistryError(
                    f"{self.kind}: '{entry.name}' is already registered by {existing.origin} "
                    f"({existing.location}); pass force=True to replace it"
                )
            self._by_name[entry.name].remove(existing)
        self._by_qualified[qualified] = entry
        self._by_name.setdefault(entry.name, []).append(entry)

    # lookup -----------------------------------------------------------------

    def _populate(self) -> None:
        if self._populated:
            return
        self._populated = True
        from trainyard import plugins

        plugins.fill_registry(self, self._sources)

    def entries(self) -> list[Entry]:
        """Every entry, in registration order, without importing lazy ones."""
        self._populate()
        return list(self._by_qualified.values())

    def names(self) -> list[str]:
        self._populate()
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        self._populate()
        return isinstance(name, str) and (name in self._by_name or name in self._by_qualified)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._populate()
        return len(self._by_qualified)

    def get_entry(self, name: str) -> Entry:
        """The entry for a plain or ``'<plugin>.<Name>'`` name, or a :class:`RegistryError`."""
        self._populate()
        candidates = self._by_name.get(name)
        if candidates and len(candidates) == 1:
            return candidates[0]
        if candidates:
            listing = ", ".join(f"'{e.qualified_name}' from {e.origin}" for e in candidates)
            raise RegistryError(
                f"{self.kind}: '{name}' is ambiguous, {len(candidates)} plugins register it: "
                f"{listing}. Use the qualified name in the config."
            )
        entry = self._by_qualified.get(name)
        if entry is not None:
            return entry
        raise RegistryError(self._unknown_name_message(name))

    def get(self, name: str) -> Any:
        """The component registered as ``name`` (imported now if lazy)."""
        return self.get_entry(name).load(self.kind)

    def _unknown_name_message(self, name: str) -> str:
        known = list(self._by_name) + list(self._by_qualified)
        lowered = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        if name.lower() in lowered and lowered[name.lower()] not in close:
            close.insert(0, lowered[name.lower()])
        where = f" (config key '{_current_key()}')" if _BUILD_KEY.get() else ""
        message = f"{self.kind}: unknown type '{name}'{where}."
        hint = openmmlab_names.unknown_type_hint(name)
        if hint:
            message += " " + hint
        elif close:
            message += " Did you mean " + ", ".join(f"'{c}'" for c in close) + "?"
        else:
            message += f" {len(self._by_name)} names are registered; `trainyard plugins` lists them."
        from trainyard import plugins

        failed = plugins.failed_plugins()
        if failed:
            message += " Plugins that failed to load: " + "; ".join(failed) + "."
        disabled = [r.name for r in plugins.plugin_records() if r.status == "disabled"]
        if disabled:
            message += f" Disabled by TRAINYARD_DISABLE_PLUGINS: {', '.join(disabled)} (their components are not available)."
        return message

    # building ---------------------------------------------------------------

    def build(self, cfg: Mapping[str, Any], **default_args: Any) -> Any:
        """Build ``cfg['type']`` with the other keys (and ``default_args``) as keyword arguments.

        ``type`` is a registered name, a class or a callable. Nested configs are left to
        the component that owns them, as in MMEngine.
        """
        if not isinstance(cfg, Mapping):
            raise RegistryError(
                f"{self.kind}: expected a dict with a 'type' key{self._key_note()}, got {cfg!r}"
            )
        if "type" not in cfg:
            raise RegistryError(
                f"{self.kind}: the config{self._key_note()} has no 'type' key: {dict(cfg)!r}"
            )
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        for key, value in default_args.items():
            kwargs.setdefault(key, value)
        component_type = cfg["type"]
        if isinstance(component_type, str):
            component = self.get(component_type)
            label = component_type
        elif callable(component_type):
            component = component_type
            label = getattr(component_type, "__name__", repr(component_type))
        else:
            raise RegistryError(
                f"{self.kind}: 'type'{self._key_note()} must be a name, a class or a callable, "
                f"got {component_type!r}"
            )
        self._check_arguments(component, label, kwargs)
        return component(**kwargs)

    def _key_note(self) -> str:
        return f" at config key '{_current_key()}'" if _BUILD_KEY.get() else ""

    def _check_arguments(self, component: Any, label: str, kwargs: dict[str, Any]) -> None:
        """Bind the arguments before calling, so a config typo is not mistaken for user code failing."""
        try:
            signature = inspect.signature(component)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            accepted = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            unexpected = sorted(set(kwargs) - set(accepted))
            detail = str(exc)
            if unexpected and not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
                hints = [
                    f"'{u}' (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(u, accepted, 1)) else f"'{u}'"
                    for u in unexpected
                ]
                detail = "unexpected argument " + ", ".join(hints)
            hint = openmmlab_names.argument_hint(label, kwargs, unexpected)
            raise RegistryError(
                f"{self.kind}: cannot build '{label}'{self._key_note()}: {detail}. "
                f"Accepted arguments: {', '.join(accepted) or '(none)'}." + (f" {hint}" if hint else "")
            ) from None
        for name, value in kwargs.items():
            parameter = signature.parameters.get(name)
            default = parameter.default if parameter is not None else inspect.Parameter.empty
            if isinstance(value, str) and isinstance(default, (int, float)):
                expected = "true or false" if isinstance(default, bool) else f"a number ({type(default).__name__})"
                key = f"{_current_key()}.{name}" if _BUILD_KEY.get() else name
                raise RegistryError(
                    f"{self.kind}: cannot build '{label}': {key}={value!r} is text, but {label} expects {expected}, "
                    f"like its default {default!r}"
                )


class RegistryView:
    """A registry seen by one plugin: everything it registers records that plugin."""

    def __init__(self, registry: Registry, origin: Origin) -> None:
        self.registry = registry
        self.origin = origin

    @property
    def kind(self) -> str:
        return self.registry.kind

    def register(self, obj: Any = None, *, name: str | None = None, force: bool = False) -> Any:
        return self.registry.register(obj, name=name, force=force, origin=self.origin)

    def register_lazy(self, name: str, path: str, *, force: bool = False) -> None:
        self.registry.register_lazy(name, path, force=force, origin=self.origin)

    def register_lazy_many(self, components: Mapping[str, str]) -> None:
        self.registry.register_lazy_many(components, origin=self.origin)


def _origin_of_module(module: str | None) -> Origin:
    """Origin of an entry registered outside a plugin hook: the top-level package."""
    top = (module or "__main__").partition(".")[0]
    return CORE if top == "trainyard" else Origin(top)


class ModelRegistry(Registry):
    """``MODELS``: a model config at any depth may carry MMEngine's ``init_cfg=dict(type='Pretrained', ...)``.

    Unless the component takes ``init_cfg`` itself, the key is removed, the module is
    built, then initialised from it by :func:`trainyard.pretrained.apply_init_cfg`.
    """

    def build(self, cfg: Mapping[str, Any], **default_args: Any) -> Any:
        if not isinstance(cfg, Mapping) or "init_cfg" not in cfg or self._takes_init_cfg(cfg.get("type")):
            return super().build(cfg, **default_args)
        module = super().build({k: v for k, v in cfg.items() if k != "init_cfg"}, **default_args)
        if cfg["init_cfg"]:
            from trainyard.pretrained import apply_init_cfg

            apply_init_cfg(module, cfg["init_cfg"], _current_key() or str(cfg.get("type")))
        return module

    def _takes_init_cfg(self, component_type: Any) -> bool:
        try:
            component = self.get(component_type) if isinstance(component_type, str) else component_type
            return "init_cfg" in inspect.signature(component).parameters
        except (RegistryError, TypeError, ValueError):
            return False  # the build itself explains an unknown type


MODELS = ModelRegistry("MODELS", hookspec="register_models")
DATASETS = Registry("DATASETS", hookspec="register_datasets")
TRANSFORMS = Registry(
    "TRANSFORMS",
    hookspec="register_transforms",
    sources=(("torchvision.transforms.v2", "torchvision.transforms.v2:Transform"),),
)
METRICS = Registry("METRICS", hookspec="register_metrics")
HOOKS = Registry("HOOKS", hookspec="register_hooks")
LOOPS = Registry("LOOPS", hookspec="register_loops")
OPTIMIZERS = Registry("OPTIMIZERS", sources=(("torch.optim", "torch.optim:Optimizer"),))
SCHEDULERS = Registry("SCHEDULERS")
DATA_SAMPLERS = Registry("DATA_SAMPLERS")
COLLATE_FUNCTIONS = Registry("COLLATE_FUNCTIONS")
TASKS = Registry("TASKS", hookspec="register_tasks")
"""The per-task part of inference and export (:class:`trainyard.inference.Task`), by a model's ``task`` name."""

ROOT_REGISTRIES: tuple[Registry, ...] = (
    MODELS,
    DATASETS,
    TRANSFORMS,
    METRICS,
    HOOKS,
    LOOPS,
    OPTIMIZERS,
    SCHEDULERS,
    DATA_SAMPLERS,
    COLLATE_FUNCTIONS,
    TASKS,
)
