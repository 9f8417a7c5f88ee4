"""Pretrained weights from the field's own sources, through their own caches, always read with ``weights_only=True``.

- torchvision's weights API (``weights='IMAGENET1K_V1'``, ``weights_backbone=...``):
  :func:`torchvision_weights` turns a name into torchvision's enum. Builders run with
  that enum inside :func:`torchvision_loading`, which routes torchvision's own
  ``weights.get_state_dict()`` (a ``torch.load`` with ``weights_only=False``) through
  :func:`fetch_weights` and :func:`read_weights`; the builder keeps its semantics (under
  ``weights_backbone``: FrozenBatchNorm2d and 3 trainable layers) and loads strictly.
- timm (``pretrained=True``): the file comes from the Hugging Face cache
  (:func:`hf_file`), is read here, and timm adapts it (classifier, input channels).
- any file or URL: ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)``
  on any model config, applied by ``MODELS.build`` once the module is built
  (:func:`apply_init_cfg`).

Files live where their library keeps them: torch.hub's cache
(``$TORCH_HOME/hub/checkpoints``) for torchvision and URLs, the Hugging Face cache
(``$HF_HOME/hub``) for timm. A missing file is downloaded when the machine is online.
Offline (no network, or ``TRAINYARD_OFFLINE=1`` / ``HF_HUB_OFFLINE=1``) the error is
one line naming the file and the folder to put it in: a config that asks for
pretrained weights never starts from random ones.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import logging
import os
import sys
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from trainyard.checkpoint import DEFAULT_REVISE_KEYS, _revise_keys, load_pretrained_state, read_checkpoint, weights_of
from trainyard.errors import CheckpointError, ConfigError, PretrainedWeightsError

__all__ = [
    "offline",
    "hub_checkpoint_dir",
    "hf_cache_dir",
    "fetch_weights",
    "hf_file",
    "read_weights",
    "torchvision_weights",
    "torchvision_loading",
    "load_torchvision_weights",
    "apply_init_cfg",
    "weights_from_checkpoint",
    "weights_come_from_checkpoint",
]

OFFLINE_VARIABLES = ("TRAINYARD_OFFLINE", "HF_HUB_OFFLINE")
INIT_CFG_KEYS = ("type", "checkpoint", "prefix", "map_location")
_logger = logging.getLogger("trainyard")


def offline() -> bool:
    """Whether downloads are off (``TRAINYARD_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

    For clusters whose firewall drops packets, where a download would hang instead of failing.
    """
    return any(_switched_on(name) for name in OFFLINE_VARIABLES)


def _switched_on(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on")


def hub_checkpoint_dir() -> Path:
    """torch.hub's weights cache, ``$TORCH_HOME/hub/checkpoints`` (read at each call, as torch does)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (read at each call, not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _downloads_off() -> str:
    return "downloads are off: " + next(f"{name}={os.environ[name]}" for name in OFFLINE_VARIABLES if _switched_on(name))


def fetch_weights(url: str, what: str, check_hash: bool = False) -> Path:
    """The local file of ``url`` in torch.hub's cache, downloaded by torch.hub when missing and allowed.

    ``file://`` URLs are copied in even offline. With ``check_hash`` the download must
    match the sha256 prefix in the file name, as torch.hub checks it.
    """
    target = hub_checkpoint_dir() / os.path.basename(urlparse(url).path)
    if target.is_file():
        return target
    reason = ""
    if offline() and urlparse(url).scheme != "file":
        reason = _downloads_off()
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        found = torch.hub.HASH_REGEX.search(target.name) if check_hash else None
        try:
            torch.hub.download_url_to_file(url, str(target), found.group(1) if found else None, progress=sys.stderr.isatty())
        except (OSError, ValueError, RuntimeError) as exc:  # no network (URLError is an OSError), a bad URL, a wrong hash
            reason = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
    if reason:
        raise PretrainedWeightsError(
            f"{what} needs {target.name}, which is not in torch.hub's cache {target.parent} ($TORCH_HOME/hub/checkpoints) "
            f"and could not be downloaded ({reason}): download {url} where there is network and put it in {target.parent}"
        )
    _logger.info(f"downloaded {url} to {target}")
    return target


def hf_file(repo_id: str, file_names: Sequence[str], what: str, alternative: str = "") -> Path:
    """The first of ``file_names`` that a Hugging Face model repository has, from the hub cache or downloaded when allowed.

    ``alternative`` ends the offline error: another way the caller takes the file.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    cache = hf_cache_dir()
    reason = _downloads_off() if offline() else ""
    for name in file_names:
        try:
            return Path(hf_hub_download(repo_id, name, cache_dir=cache, local_files_only=offline()))
        except LocalEntryNotFoundError as exc:  # not cached, and no network or downloads off
            reason = reason or str(exc).splitlines()[0][:200]
        except EntryNotFoundError:  # the repository has no such file: try the next name
            continue
        except OSError as exc:
            reason = reason or f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    folder = f"models--{repo_id.replace('/', '--')}"
    raise PretrainedWeightsError(
        f"{what} needs {file_names[0]} of https://huggingface.co/{repo_id}, which is not in the Hugging Face cache {cache} "
        f"($HF_HOME/hub) and could not be downloaded ({reason or 'not found'}): where there is network, run "
        f"`hf download {repo_id} {file_names[0]}` and copy the cache's {folder} folder into {cache}{alternative}"
    )


def read_weights(path: Path) -> dict[str, Any]:
    """The weights in a ``.safetensors`` file, or in a torch file read by :func:`trainyard.checkpoint.read_checkpoint`."""
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise PretrainedWeightsError(f"{path} is a safetensors file; reading it needs: pip install safetensors") from None
        return load_file(str(path), device="cpu")
    return dict(weights_of(read_checkpoint(path)))


# torchvision ---------------------------------------------------------------------


def _weights_class(builder: Callable[..., Any], argument: str) -> type:
    from torchvision.models import WeightsEnum

    hint = typing.get_type_hints(builder).get(argument)
    for candidate in typing.get_args(hint) or (hint,):
        if isinstance(candidate, type) and issubclass(candidate, WeightsEnum):
            return candidate
    raise ConfigError(f"torchvision's {builder.__name__} takes no {argument}")


def torchvision_weights(builder: Callable[..., Any], name: str, argument: str = "weights") -> Any:
    """torchvision's weights enum member for a builder's ``argument`` (``weights`` or ``weights_backbone``).

    ``name`` is a member (``'IMAGENET1K_V1'``, ``'DEFAULT'``) or a full name
    (``'ResNet50_Weights.IMAGENET1K_V1'``), as torchvision's reference scripts take it.
    """
    from torchvision.models import get_weight

    enum_class = _weights_class(builder, argument)
    members = list(enum_class.__members__)
    try:
        weights = get_weight(name) if "." in name else enum_class[name]
    except (KeyError, ValueError, AttributeError):
        weights = None
    if weights is None or not isinstance(weights, enum_class):
        raise ConfigError(
            f"{argument}={name!r} is not a weight of torchvision's {builder.__name__}; choose one of "
            f"{', '.join(members)} (or a full name like '{enum_class.__name__}.{members[0]}')"
        )
    return weights


_FROM_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("trainyard_weights_from_checkpoint", default=False)


@contextlib.contextmanager
def weights_from_checkpoint() -> Iterator[None]:
    """While building a model whose every weight a checkpoint then replaces (resume, evaluation, prediction).

    Pretrained weights the config names are neither fetched nor read: an offline
    machine can evaluate a fine-tuned run without the ImageNet file, and a checkpoint
    from elsewhere cannot make trainyard fetch a URL its saved config names (into the
    shared cache). The architecture is built exactly as with the weights (torchvision's
    frozen batch norm under ``weights_backbone``), so the checkpoint still fits.
    """
    token = _FROM_CHECKPOINT.set(True)
    try:
        yield
    finally:
        _FROM_CHECKPOINT.reset(token)


def weights_come_from_checkpoint() -> bool:
    """Whether a model being built now gets its weights from a checkpoint (see :func:`weights_from_checkpoint`)."""
    return _FROM_CHECKPOINT.get()


class _NotRead(dict):
    """The empty state dict torchvision's builders get under :func:`weights_from_checkpoint`; loading it does nothing."""


@contextlib.contextmanager
def torchvision_loading(where: str) -> Iterator[None]:
    """Route torchvision's ``WeightsEnum.get_state_dict`` through trainyard's cache lookup and safe reading.

    Used around one builder call: the builder decides what to load and loads it
    strictly, as it would alone; only fetching and reading change. The patch is on
    torchvision's class, so while the context is open it holds for every builder in
    the process. What was loaded is logged when the builder returns; a cached file
    that does not fit (another architecture under the expected name) is one line.
    """
    from torchvision.models import WeightsEnum

    original = WeightsEnum.get_state_dict
    loaded: list[tuple[Any, Path, int]] = []

    original_load = nn.Module.load_state_dict
    skipped = weights_come_from_checkpoint()

    def get_state_dict(self: Any, *args: Any, check_hash: bool = False, **kwargs: Any) -> dict[str, Any]:
        if skipped:
            return _NotRead()
        path = fetch_weights(self.url, f"{where}: torchvision's {self}", check_hash=check_hash)
        state = read_weights(path)
        loaded.append((self, path, len(state)))
        return state

    def load_state_dict(self: nn.Module, state_dict: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        if isinstance(state_dict, _NotRead):
            return None
        return original_load(self, state_dict, *args, **kwargs)

    WeightsEnum.get_state_dict = get_state_dict  # type: ignore[method-assign]
    if skipped:
        nn.Module.load_state_dict = load_state_dict  # type: ignore[method-assign]
    try:
        yield
    except RuntimeError as exc:
        if not loaded or not str(exc).startswith("Error(s) in loading state_dict"):
            raise
        weights, path, _ = loaded[-1]
        detail = " ".join(str(exc).split())[:300]
        raise PretrainedWeightsError(f"{where}: {path} is not {weights} ({detail}); delete it to download it again") from None
    finally:
        WeightsEnum.get_state_dict = original  # type: ignore[method-assign]
        nn.Module.load_state_dict = original_load  # type: ignore[method-assign]
    for weights, path, count in loaded:
        _logger.info(f"{where}: loaded {weights} from {path}: {count} keys, 0 missing, 0 unexpected (torchvision's builder loads strictly)")


def load_torchvision_weights(module: nn.Module, weights: Any, where: str) -> list[str]:
    """Load torchvision ``weights`` into a ``module`` built without them; keys whose shape differs (a head for another class count) stay fresh.

    Returns the re-initialised keys. A file under the expected name that is another
    architecture (keys missing or left over) is one line, never a start from random weights.
    """
    if weights_come_from_checkpoint():
        return []
    path = fetch_weights(weights.url, f"{where}: torchvision's {weights}", check_hash=True)
    state = read_weights(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise PretrainedWeightsError(
            f"{where}: {path} is not {weights} ({len(missing)} of the model's keys missing, e.g. {missing[:2]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:2]}); delete it to download it again"
        )
    return load_pretrained_state(module, state, f"{where}: {weights} ({path})")


# init_cfg ------------------------------------------------------------------------


def _torchvision_url(name: str, where: str) -> str:
    """mmengine's ``torchvision://`` names: ``resnet50`` (its first weights, IMAGENET1K_V1, as mmdet's configs mean),
    ``resnet50.imagenet1k_v2``, or ``ResNet50_Weights.IMAGENET1K_V2``."""
    from torchvision.models import get_model_weights, get_weight, list_models

    if "_Weights." in name:
        try:
            return get_weight(name).url
        except (KeyError, ValueError, AttributeError):
            raise ConfigError(f"{where}.init_cfg: torchvision has no weights named {name!r}") from None
    model, _, member = name.partition(".")
    known = list_models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=3)
        raise ConfigError(f"{where}.init_cfg: torchvision://{name}: no torchvision model {model!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    enum_class = get_model_weights(model)
    if not member:
        return next(iter(enum_class)).url
    try:
        return enum_class[member.upper()].url
    except KeyError:
        raise ConfigError(f"{where}.init_cfg: torchvision://{name}: {model} has the weights {', '.join(m.lower() for m in enum_class.__members__)}") from None


def _checkpoint_file(checkpoint: str, where: str) -> Path:
    scheme = urlparse(checkpoint).scheme
    what = f"{where}.init_cfg checkpoint={checkpoint!r}"
    if scheme == "torchvision":
        return fetch_weights(_torchvision_url(checkpoint.split("://", 1)[1], where), what, check_hash=True)
    if scheme in ("http", "https", "file"):
        return fetch_weights(checkpoint, what)
    if "://" in checkpoint:
        raise ConfigError(f"{what}: {scheme}:// is not a source trainyard reads; give torchvision://NAME, an http(s):// or file:// URL, or a path")
    path = Path(checkpoint).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(f"{what}: {path} does not exist")
    return path


def _with_prefix(weights: Mapping[str, Any], prefix: str, what: str) -> dict[str, Any]:
    selected = {key[len(prefix):]: value for key, value in weights.items() if key.startswith(prefix)}
    if not selected:
        heads = sorted({key.split(".", 1)[0] + "." for key in weights})
        raise PretrainedWeightsError(f"{what}: no key starts with prefix={prefix!r}; the file's keys start with {', '.join(heads[:8])}")
    return selected


def _target(module: nn.Module, weights: Mapping[str, Any], what: str) -> tuple[str, nn.Module]:
    """The module itself, or the zoo model a trainyard wrapper keeps as ``net``: whichever shares more keys with the file."""
    candidates = [("", module)]
    if isinstance(getattr(module, "net", None), nn.Module):
        candidates.append((".net", module.net))
    scored = [(len(set(weights) & set(candidate.state_dict())), name, candidate) for name, candidate in candidates]
    overlap, name, target = max(scored, key=lambda item: item[0])
    if overlap == 0:
        own = list(module.state_dict())[:3]
        raise PretrainedWeightsError(
            f"{what}: none of the file's keys ({', '.join(list(weights)[:3])}, ...) is a key of {type(module).__name__} "
            f"({', '.join(own)}, ...); select the part of the file that fits with prefix="
        )
    return name, target


def apply_init_cfg(module: nn.Module, init_cfg: Mapping[str, Any] | Sequence[Mapping[str, Any]], where: str) -> None:
    """MMEngine's ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=None)`` on a built module.

    ``checkpoint`` is ``torchvision://NAME``, an http(s) or ``file://`` URL (through
    torch.hub's cache) or a path. ``prefix`` keeps the file's keys that start with it,
    without it (``'backbone.'`` takes a detector's backbone). Keys are matched against
    the module, or against the torchvision or timm model a trainyard wrapper holds as
    ``net``; keys that do not fit are reported and stay as initialised. mmengine's
    ``map_location`` is accepted and has no effect: weights are read onto the CPU.
    """
    if isinstance(init_cfg, str) or not isinstance(init_cfg, (Mapping, Sequence)):
        raise ConfigError(f"{where}.init_cfg must be dict(type='Pretrained', checkpoint=...) or a list of them, got {init_cfg!r}")
    if weights_come_from_checkpoint():
        return
    for cfg in ([init_cfg] if isinstance(init_cfg, Mapping) else list(init_cfg)):
        if not isinstance(cfg, Mapping) or cfg.get("type") != "Pretrained":
            kind = cfg.get("type") if isinstance(cfg, Mapping) else cfg
            raise ConfigError(
                f"{where}.init_cfg type {kind!r} is not applied by trainyard: only dict(type='Pretrained', checkpoint=..., "
                "prefix=...) is; torchvision and timm modules initialise their own layers"
            )
        unknown = sorted(set(cfg) - set(INIT_CFG_KEYS))
        if unknown or not cfg.get("checkpoint"):
            raise ConfigError(f"{where}.init_cfg needs checkpoint=... and takes only {', '.join(INIT_CFG_KEYS)}" + (f"; unknown: {unknown}" if unknown else ""))
        checkpoint = str(cfg["checkpoint"])
        what = f"{where}.init_cfg checkpoint={checkpoint!r}"
        path = _checkpoint_file(checkpoint, where)
        try:
            weights = _revise_keys(read_weights(path), DEFAULT_REVISE_KEYS)
        except CheckpointError as exc:
            raise CheckpointError(f"{what}: {exc}") from None
        if cfg.get("prefix"):
            weights = _with_prefix(weights, cfg["prefix"], what)
        name, target = _target(module, weights, what)
        source = checkpoint if str(path) == checkpoint else f"{checkpoint} ({path})"
        own = target.state_dict()
        covered = len(set(own) & set(weights))
        if covered * 2 < len(own):
            raise PretrainedWeightsError(
                f"{what}: {path} has only {covered} of the {len(own)} keys of {type(target).__name__}: another "
                "architecture (or a wrong prefix); more than half would start from random weights. Fix checkpoint/prefix, "
                "or delete the file if it sits in a cache under the wrong name"
            )
        load_pretrained_state(target, weights, f"{where}{name}: {source}")
