"""Configs shipped inside installed packages, named ``scope::path``.

As with OpenMMLab's ``mmdet::`` scope, ``trainyard::_base_/default_runtime.py`` is
the file ``_base_/default_runtime.py`` in the ``configs/`` folder of the installed
``trainyard`` package, and ``acme::tabular/base.py`` is ``tabular/base.py`` in the
``configs/`` folder of the package ``acme``. So a config written anywhere can
inherit from configs that came with a pip install, and ``trainyard train
trainyard::seg/unet.py`` works without the repository.

A scope is an import package name, or the entry-point name or distribution name of
a trainyard plugin (which then stands for the package its entry point lives in).
Nothing is imported to find the folder: the import system's spec says where the
package is installed. This module imports no torch, so the command line can check a
config name at once.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from pathlib import Path

from trainyard.errors import ConfigError

__all__ = ["SEPARATOR", "is_scoped", "config_root", "resolve", "config_file", "config_stem", "scoped_name", "shipped_configs"]

SEPARATOR = "::"
CONFIG_FOLDER = "configs"
PLUGIN_GROUP = "trainyard.plugins"

_roots: dict[str, Path] = {}
"""Scopes resolved so far in this process (and ``trainyard``), for :func:`scoped_name`."""


def is_scoped(name: str | os.PathLike[str]) -> bool:
    return SEPARATOR in str(name)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _package_folder(package: str) -> Path | None:
    """Where an importable package is installed, without importing it."""
    if not package.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _plugin_package(scope: str) -> tuple[str, str | None] | None:
    """``(top-level package, distribution)`` of the plugin whose entry-point or distribution name is ``scope``."""
    from importlib.metadata import entry_points

    wanted = _normalized(scope)
    for entry_point in entry_points(group=PLUGIN_GROUP):
        distribution = entry_point.dist.metadata["Name"] if entry_point.dist is not None else None
        if entry_point.name == scope or (distribution and _normalized(distribution) == wanted):
            return entry_point.value.partition(":")[0].partition(".")[0], distribution
    return None


def config_root(scope: str) -> Path:
    """The ``configs/`` folder of the package that ``scope`` names.

    The import package of that name comes first; a plugin whose entry-point or
    distribution name it is comes next (also when a same-named package ships no configs).
    """
    if scope in _roots:
        return _roots[scope]
    candidates = [(_package_folder(scope), f"package '{scope}'")]
    if (plugin := _plugin_package(scope)) is not None:
        package, distribution = plugin
        candidates.append((_package_folder(package), f"package '{package}' (plugin '{scope}', distribution {distribution})"))
    found = [(folder, owner) for folder, owner in candidates if folder is not None]
    if not found:
        raise ConfigError(
            f"no installed package, trainyard plugin or distribution is called '{scope}'; "
            f"install the package that ships the config, or check the spelling before '{SEPARATOR}'"
        )
    for folder, _ in found:
        if (folder / CONFIG_FOLDER).is_dir():
            _roots[scope] = folder / CONFIG_FOLDER
            return _roots[scope]
    folder, owner = found[-1]
    raise ConfigError(f"{owner} at {folder} ships no configs: it has no '{CONFIG_FOLDER}/' folder")


def resolve(name: str, referrer: str | os.PathLike[str] | None = None) -> Path:
    """The file a ``scope::path`` name stands for; ``referrer`` is the config naming it, for the message."""
    scope, _, relative = str(name).partition(SEPARATOR)
    where = f" (named in {referrer})" if referrer else ""
    if not scope or not relative or SEPARATOR in relative:
        raise ConfigError(f"'{name}'{where} is not of the form 'package::path/to/config.py'")
    try:
        root = config_root(scope)
    except ConfigError as exc:
        raise ConfigError(f"cannot find config '{name}'{where}: {exc}") from None
    path = root / relative
    if not path.is_file():
        shipped = _configs_under(root)
        close = difflib.get_close_matches(relative, shipped, n=3, cutoff=0.8)
        hint = f"did you mean {', '.join(f'{scope}{SEPARATOR}{c}' for c in close)}?" if close else (
            f"it ships {len(shipped)} configs, e.g. {', '.join(shipped[:5])}" if shipped else "it ships none")
        raise ConfigError(f"config '{name}'{where} does not exist in {root}; {hint}")
    return path


def _configs_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))


def shipped_configs(scope: str) -> list[str]:
    """The scoped names of the configs a package ships; none when it has no ``configs/`` folder."""
    try:
        root = config_root(scope)
    except ConfigError:
        return []
    return [f"{scope}{SEPARATOR}{name}" for name in _configs_under(root)]


def config_file(name: str | os.PathLike[str]) -> Path:
    """A config given on the command line: a file path, or a ``scope::path`` name."""
    if is_scoped(name):
        return resolve(str(name))
    path = Path(name)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return path


def config_stem(name: str | os.PathLike[str]) -> str:
    """The config's file name without folders, scope or ``.py``: the default work dir's name (``quick`` for ``acme::quick.py``)."""
    return Path(str(name).rpartition(SEPARATOR)[2]).stem


def scoped_name(path: str | os.PathLike[str]) -> str | None:
    """``scope::path`` for a file inside a known package's ``configs/`` folder, else None."""
    try:
        config_root("trainyard")
    except ConfigError:
        pass
    absolute = os.path.normpath(os.path.abspath(path))
    for scope, root in _roots.items():
        prefix = os.path.normpath(os.path.abspath(root)) + os.sep
        if absolute.startswith(prefix):
            return f"{scope}{SEPARATOR}{Path(absolute[len(prefix):]).as_posix()}"
    return None
