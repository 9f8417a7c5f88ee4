"""MMEngine-format Python configs, checked before anything is built.

:func:`load_config` reads a config with ``mmengine.config.Config`` (``_base_``
inheritance, ``_delete_=True``, ``{{_base_.x}}``) and applies ``--cfg-options``
overrides. :func:`validate_config` then catches what would otherwise fail deep inside
a run: a misspelt top-level key, a missing required key, an unknown component type.
:func:`explain` tells which file set each key.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainyard import config_scopes
from trainyard.errors import ConfigError, RegistryError
from trainyard.lr_scaling import auto_scale_lr_options

if TYPE_CHECKING:
    from mmengine.config import Config

__all__ = [
    "RUNNER_KEYS",
    "load_config",
    "parse_overrides",
    "validate_config",
    "explain",
    "format_explanation",
    "flatten",
    "import_custom_modules",
    "DictCallsToLiterals",
    "literal_assignments",
    "config_from_saved_text",
]

RUNNER_KEYS: frozenset[str] = frozenset(
    {
        "model",
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "val_evaluator",
        "test_evaluator",
        "optim_wrapper",
        "param_scheduler",
        "train_cfg",
        "val_cfg",
        "test_cfg",
        "default_hooks",
        "custom_hooks",
        "env_cfg",
        "randomness",
        "work_dir",
        "load_from",
        "resume",
        "overwrite",
        "log_level",
        "log_processor",
        "launcher",
        "custom_imports",
        "compile",
        "model_wrapper_cfg",
        "auto_scale_lr",
    }
)

REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "train": ("model", "train_dataloader", "train_cfg", "optim_wrapper"),
    "test": ("model", "test_dataloader", "test_evaluator"),
    "val": ("model", "val_dataloader", "val_evaluator"),
}

OVERRIDES_SOURCE = "--cfg-options"


def _config_class() -> type[Config]:
    from mmengine.config import Config

    return Config


def load_config(path: str | os.PathLike[str], overrides: Mapping[str, Any] | Sequence[str] | None = None) -> Config:
    """Read a config file, apply overrides and import its ``custom_imports``.

    ``path`` is a file or a config shipped in a package (``'trainyard::seg/unet.py'``,
    see :mod:`trainyard.config_scopes`); ``_base_`` may name either kind.
    ``overrides`` is a mapping of dotted keys to values, or ``--cfg-options`` strings
    (``'a.b=1'``, ``'c=[1,2]'``) parsed by :func:`parse_overrides`.
    """
    path = config_scopes.config_file(path)
    if path.suffix != ".py":
        raise ConfigError(f"config must be a Python file (.py): {path}")
    cycle = _base_cycle(path)
    if cycle:
        raise ConfigError("_base_ files include each other in a circle: " + " -> ".join(str(p) for p in cycle))
    try:
        cfg = _read_file(path)
    except SyntaxError as exc:
        raise ConfigError(_syntax_message(path, exc)) from None
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: a file named in _base_ does not exist: {exc}") from None
    except NameError as exc:
        raise ConfigError(f"{_name_error_location(path, exc)}: {exc}; define it in that file or import it") from None
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise ConfigError(f"{path}: cannot be read as a config: {type(exc).__name__}: {exc}") from None
    if overrides:
        if not isinstance(overrides, Mapping):
            overrides = parse_overrides(overrides)
        try:
            cfg.merge_from_dict(dict(overrides))
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ConfigError(f"cannot apply {OVERRIDES_SOURCE} {dict(overrides)}: {exc}") from None
    import_custom_modules(cfg)
    return cfg


def _read_file(path: Path) -> Config:
    config_class = _config_class()
    with _scoped_bases(config_class):
        return config_class.fromfile(str(path), import_custom_modules=False)


@contextlib.contextmanager
def _scoped_bases(config_class: type[Config]) -> Iterator[None]:
    """Let mmengine read ``scope::path`` bases through :mod:`trainyard.config_scopes`.

    mmengine resolves scopes only for OpenMMLab's own packages (a fixed table), and
    then adds ``_scope_`` keys to the inherited dicts, which trainyard's components
    would receive as arguments. Its resolver is a static method with no other hook,
    so it is swapped for the duration of one read.
    """
    original = config_class.__dict__["_get_cfg_path"]

    def get_cfg_path(cfg_path: str, filename: str) -> tuple[str, None]:
        if config_scopes.is_scoped(cfg_path):
            return str(config_scopes.resolve(cfg_path, filename)), None
        return original.__func__(cfg_path, filename)

    config_class._get_cfg_path = staticmethod(get_cfg_path)
    try:
        yield
    finally:
        config_class._get_cfg_path = original


def _base_cycle(path: Path, chain: tuple[Path, ...] = ()) -> list[Path]:
    """The files of a ``_base_`` circle reachable from ``path`` (empty when there is none)."""
    path = path.resolve()
    if path in chain:
        return [*chain[chain.index(path):], path]
    try:
        bases = _base_files(path)
    except (SyntaxError, ValueError, OSError):
        return []  # reported when the file is read
    for base in bases:
        if base.is_file() and (cycle := _base_cycle(base.resolve(), (*chain, path))):
            return cycle
    return []


def _name_error_location(path: Path, exc: NameError) -> str:
    """``config FILE, line N`` of the first use of the undefined name, in the file or its bases."""
    name = getattr(exc, "name", None)
    for candidate in [path, *_all_bases(path)]:
        try:
            tree = ast.parse(candidate.read_text(), filename=str(candidate))
        except (SyntaxError, OSError):
            continue
        lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
        if lines:
            return f"config {candidate}, line {min(lines)}"
    return f"config {path}"


def _all_bases(path: Path) -> list[Path]:
    found: list[Path] = []
    for base in _base_files(path):
        if base.is_file() and base not in found:
            found += [base, *_all_bases(base)]
    return found


def _syntax_message(path: Path, exc: SyntaxError) -> str:
    """Name the file (``path`` or one of its bases) and line of a syntax error."""
    located = _locate_syntax_error(path) or exc
    return f"syntax error in config {located.filename}, line {located.lineno}: {located.msg}"


def _locate_syntax_error(path: Path) -> SyntaxError | None:
    try:
        bases = _base_files(path)
    except SyntaxError as exc:
        return exc
    for base in bases:
        if base.is_file() and (found := _locate_syntax_error(base)) is not None:
            return found
    return None


def import_custom_modules(cfg: Config) -> None:
    """Import ``custom_imports = dict(imports=[...])`` as OpenMMLab configs expect.

    With ``allow_failed_imports=True`` a module that raises ``ImportError`` is skipped
    (:func:`trainyard.openmmlab_keys.config_warnings` names it), as in MMEngine.
    """
    custom = cfg.get("custom_imports")
    if not custom:
        return
    modules = custom.get("imports", []) if isinstance(custom, Mapping) else custom
    allow_failed = isinstance(custom, Mapping) and bool(custom.get("allow_failed_imports", False))
    if isinstance(modules, str):
        modules = [modules]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            if allow_failed:
                continue
            if isinstance(exc, ModuleNotFoundError) and exc.name and module.startswith(exc.name):
                raise ConfigError(
                    f"custom_imports names module '{module}', which cannot be found on sys.path"
                ) from None
            raise


class DictCallsToLiterals(ast.NodeTransformer):
    """``dict(a=1)`` -> ``{'a': 1}``, so configs' usual spelling parses as a literal; ``inf`` and ``nan`` (how a saved config writes ``float('inf')``) are floats."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in ("inf", "nan"):
            return ast.copy_location(ast.Constant(float(node.id)), node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args and all(k.arg for k in node.keywords):
            return ast.Dict(keys=[ast.Constant(k.arg) for k in node.keywords], values=[k.value for k in node.keywords])
        return node


def literal_assignments(text: str) -> tuple[dict[str, Any], list[tuple[int, str | None, str]]]:
    """The top-level ``name = value`` lines of config text whose values are literals, parsed without running anything.

    Returns ``(values, others)``; ``others`` lists ``(line, name, source)`` of each
    assignment whose value is not a literal, and ``(line, None, source)`` of any other
    statement. The ``pprint`` form a Runner saves for configs holding live objects
    (one dict expression) counts as that dict's assignments. Raises ``SyntaxError``.
    """
    tree = ast.parse(text)
    nodes = tree.body
    if len(nodes) == 1 and isinstance(nodes[0], ast.Expr) and isinstance(nodes[0].value, ast.Dict):
        literal = nodes[0].value
        nodes = [ast.Assign(targets=[ast.Name(key.value)], value=value, lineno=value.lineno)
                 for key, value in zip(literal.keys, literal.values) if isinstance(key, ast.Constant) and isinstance(key.value, str)]
        if len(nodes) != len(literal.keys):
            return {}, [(1, None, "a dict whose keys are not all names")]
    values: dict[str, Any] = {}
    others: list[tuple[int, str | None, str]] = []
    for node in nodes:
        named = isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        if not named:
            others.append((node.lineno, None, ast.get_source_segment(text, node) or type(node).__name__))
            continue
        try:
            values[node.targets[0].id] = ast.literal_eval(DictCallsToLiterals().visit(node.value))
        except (ValueError, TypeError, SyntaxError, RecursionError):
            others.append((node.lineno, node.targets[0].id, ast.get_source_segment(text, node.value) or ast.unparse(node.value)))
    return values, others


def config_from_saved_text(text: str, source: str) -> Config:
    """A config saved by trainyard (in a checkpoint, a run directory, an export), read as data: never executed.

    Only literal assignments are accepted, and ``custom_imports`` is not imported: a
    checkpoint or run folder may come from anyone, while a config file the user
    names is code they chose to run.
    """
    try:
        values, others = literal_assignments(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ConfigError(f"the config saved in {source} cannot be parsed ({type(exc).__name__}: {str(exc)[:200]}); "
                          "give the config file too") from None
    if others:
        line, name, code = others[0]
        shown = (f"{name} = " if name else "") + (code.splitlines() or [""])[0][:80]
        raise ConfigError(
            f"the config saved in {source} is not plain data (line {line}: {shown}"
            f"{f', and {len(others) - 1} more' if len(others) > 1 else ''}); a saved config is read as literals only, "
            "never run. If you trust that config, give its file too"
        )
    return _config_class()(values, filename=None)


def _parse_value(text: str, item: str) -> Any:
    """A Python literal (``dict(...)`` allowed) where the text is one, else the text itself.

    Text with an unbalanced bracket or quote is a literal typed incompletely (``a=[1,``),
    not a string the user meant: it is an error naming ``item``.
    """
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        tree = DictCallsToLiterals().visit(ast.parse(text.strip(), mode="eval"))
        return ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        problem = _unbalanced(text)
        if problem:
            raise ConfigError(
                f"{OVERRIDES_SOURCE} item {item!r} has {problem}: balance its brackets and quotes, "
                f"or quote the whole value to pass it as a string ({item.partition('=')[0]}={text!r})"
            ) from None
        return text


_BRACKET_PAIRS = {"[": "]", "(": ")", "{": "}"}
_BEFORE_STRING_LITERAL = "[({,=:"
"""Characters after which a quote opens a string; elsewhere (``bob's run``) it is an apostrophe."""


def _unbalanced(text: str) -> str | None:
    """The first bracket or string quote that ``text`` leaves unmatched, described; None when all match."""
    open_brackets: list[str] = []
    quote, escaped, previous = "", False, ""
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"" and (not previous.strip() or previous in _BEFORE_STRING_LITERAL):
            quote = char
        elif char in _BRACKET_PAIRS:
            open_brackets.append(char)
        elif char in _BRACKET_PAIRS.values():
            if not open_brackets or _BRACKET_PAIRS[open_brackets.pop()] != char:
                return f"an unmatched {char!r}"
        previous = char
    if quote:
        return f"an unterminated {quote}-quoted string"
    if open_brackets:
        return f"an unclosed {open_brackets[-1]!r}"
    return None


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``--cfg-options`` items: ``'a.b=1'``, ``'c=[1,2]'``, ``'name=a, b'``.

    Unlike ``mmengine.config.DictAction``, a value that is not a Python literal stays
    one string (commas and spaces included) instead of being split into a list.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{OVERRIDES_SOURCE} item {item!r} is not of the form key=value")
        options[key.strip()] = _parse_value(value, item)
    return options


# validation -------------------------------------------------------------------


def validate_config(cfg: Mapping[str, Any], mode: str | None = None, check_types: bool = True) -> None:
    """Raise :class:`ConfigError` for a config that cannot describe a run.

    - a top-level key close to one the Runner reads (``trian_dataloader``) is a typo;
      other top-level names are the config's own variables and stay allowed;
    - ``mode`` (``'train'`` or ``'test'``) names the keys that must be present;
    - with ``check_types``, every ``type`` the Runner will build is looked up now.
    """
    problems: list[str] = []
    for key in cfg:
        if key in RUNNER_KEYS or key.startswith("_"):
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            problems.append(f"unknown top-level key '{key}': did you mean '{close[0]}'?")
    if mode is not None:
        missing = [k for k in REQUIRED_KEYS[mode] if cfg.get(k) is None]
        if missing:
            problems.append(f"the config has no {', '.join(repr(k) for k in missing)}, which '{mode}' needs")
        if mode == "train" and cfg.get("val_dataloader") is not None and cfg.get("val_evaluator") is None:
            problems.append("the config has 'val_dataloader' but no 'val_evaluator'")
    if problems:
        raise ConfigError(_problem_message(cfg, problems))
    auto_scale_lr_options(cfg.get("auto_scale_lr"))
    if check_types:
        _check_types(cfg)


def _problem_message(cfg: Mapping[str, Any], problems: list[str]) -> str:
    source = getattr(cfg, "filename", None)
    head = f"config {source}: " if source else "config: "
    return head + ("; ".join(problems) if len(problems) == 1 else "\n  - " + "\n  - ".join(problems))


def _datasets_in(node: Any, key: str) -> Iterator[tuple[Any, str]]:
    """A dataset config and the ones a wrapper holds (``dataset``, ``datasets``), with their config keys."""
    yield node, key
    if not isinstance(node, Mapping):
        return
    if isinstance(node.get("dataset"), Mapping):
        yield from _datasets_in(node["dataset"], f"{key}.dataset")
    inner = node.get("datasets")
    for index, dataset in enumerate(inner if isinstance(inner, (list, tuple)) else []):
        yield from _datasets_in(dataset, f"{key}.datasets[{index}]")


def _check_types(cfg: Mapping[str, Any]) -> None:
    from trainyard import registry as reg

    def look_up(registry: reg.Registry, node: Any, key: str) -> None:
        if isinstance(node, Mapping) and isinstance(node.get("type"), str):
            with reg.building(key):
                registry.get_entry(node["type"])

    checks: list[tuple[reg.Registry, Any, str]] = [(reg.MODELS, cfg.get("model"), "model")]
    for split in ("train", "val", "test"):
        loader = cfg.get(f"{split}_dataloader")
        if isinstance(loader, Mapping):
            for dataset, dataset_key in _datasets_in(loader.get("dataset"), f"{split}_dataloader.dataset"):
                checks.append((reg.DATASETS, dataset, dataset_key))
                pipeline = dataset.get("pipeline") if isinstance(dataset, Mapping) else None
                for index, step in enumerate(pipeline or []):
                    checks.append((reg.TRANSFORMS, step, f"{dataset_key}.pipeline[{index}]"))
            checks.append((reg.DATA_SAMPLERS, loader.get("sampler"), f"{split}_dataloader.sampler"))
            checks.append((reg.DATA_SAMPLERS, loader.get("batch_sampler"), f"{split}_dataloader.batch_sampler"))
        evaluator = cfg.get(f"{split}_evaluator")
        for index, metric in enumerate(evaluator if isinstance(evaluator, list) else [evaluator]):
            checks.append((reg.METRICS, metric, f"{split}_evaluator" + (f"[{index}]" if isinstance(evaluator, list) else "")))
        checks.append((reg.LOOPS, cfg.get(f"{split}_cfg"), f"{split}_cfg"))
    optim_wrapper = cfg.get("optim_wrapper")
    if isinstance(optim_wrapper, Mapping):
        checks.append((reg.OPTIMIZERS, optim_wrapper.get("optimizer"), "optim_wrapper.optimizer"))
    schedulers = cfg.get("param_scheduler")
    for index, scheduler in enumerate(schedulers if isinstance(schedulers, list) else [schedulers]):
        checks.append((reg.SCHEDULERS, scheduler, f"param_scheduler[{index}]"))
    for name, hook in (cfg.get("default_hooks") or {}).items():
        checks.append((reg.HOOKS, hook, f"default_hooks.{name}"))
    for index, hook in enumerate(cfg.get("custom_hooks") or []):
        checks.append((reg.HOOKS, hook, f"custom_hooks[{index}]"))
    try:
        for registry, node, key in checks:
            look_up(registry, node, key)
    except RegistryError as exc:
        raise ConfigError(_problem_message(cfg, [str(exc)])) from None


# explain ----------------------------------------------------------------------


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one ``{'a.b.c': value}`` dict (lists and other values are leaves)."""
    if isinstance(node, Mapping) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: node}


def _base_files(path: Path) -> list[Path]:
    """The files named in ``_base_`` (relative or ``scope::path``), read with ``ast`` so nothing is executed.

    Paths are absolute but symlinks are kept, so a file reached through a package's
    ``configs/`` folder is still shown by its scoped name.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else list(bases)
            return [
                config_scopes.resolve(b, path) if config_scopes.is_scoped(b) else Path(os.path.normpath(path.parent.absolute() / b))
                for b in bases
            ]
    return []


def _source_name(path: Path) -> str:
    """How ``--explain`` names a file: ``trainyard::_base_/default_runtime.py`` for a shipped config, else its path."""
    return config_scopes.scoped_name(path) or str(path)


def _provenance(path: Path, memo: dict[Path, dict[str, tuple[Any, str]]]) -> dict[str, tuple[Any, str]]:
    """Map each flattened key of ``path``'s resolved config to ``(value, file that set it)``."""
    path = Path(os.path.normpath(path.absolute()))
    if path in memo:
        return memo[path]
    inherited: dict[str, tuple[Any, str]] = {}
    for base in _base_files(path):
        inherited.update(_provenance(base, memo))
    resolved = flatten(_read_file(path).to_dict())
    result = {}
    for key, value in resolved.items():
        before = inherited.get(key)
        result[key] = before if before is not None and before[0] == value else (value, _source_name(path))
    memo[path] = result
    return result


def explain(path: str | os.PathLike[str], overrides: Mapping[str, Any] | Sequence[str] | None = None) -> list[tuple[str, Any, str]]:
    """For every key of the resolved config: ``(dotted key, value, where it was set)``.

    The source is the last file in the ``_base_`` chain whose value is the final one,
    or ``--cfg-options`` for an override.
    """
    cfg = load_config(path, overrides)
    provenance = _provenance(config_scopes.config_file(path), {})
    rows = []
    for key, value in flatten(cfg.to_dict()).items():
        known = provenance.get(key)
        source = known[1] if known is not None and known[0] == value else OVERRIDES_SOURCE
        rows.append((key, value, source))
    return rows


def format_explanation(rows: list[tuple[str, Any, str]], root: Path | None = None) -> str:
    """Rows aligned as ``key = value    # file``, paths relative to ``root`` when inside it."""
    root = (root or Path.cwd()).resolve()

    def short(source: str) -> str:
        try:
            return str(Path(source).relative_to(root))
        except ValueError:
            return source

    left = [f"{key} = {value!r}" for key, value, _ in rows]
    width = min(max((len(item) for item in left), default=0), 72)
    return "\n".join(f"{item:<{width}}  # {short(source)}" for item, (_, _, source) in zip(left, rows))
