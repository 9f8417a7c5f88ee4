"""Reading a checkpoint that pickled another program's objects, without importing or running any of them.

An MMEngine training checkpoint holds, beside ``state_dict``, a ``message_hub`` of
MMEngine's own objects (``HistoryBuffer``, numpy arrays), ``optimizer``,
``param_schedulers`` and ``meta``. ``weights_only=True`` rightly refuses it: to
unpickle an object is to call whatever the file names. Here every name the file
mentions that torch does not allow is bound, by name only, to an inert placeholder
class, and torch's own ``weights_only`` unpickler reads the file: it imports no
module, and calls nothing but torch's tensor rebuilders and these placeholders, which
take their arguments and keep none. Modules torch never allows (``os``, ``sys``) stay
refused. What the placeholders stand for is reported, never used.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["ForeignObject", "foreign_globals", "read_inertly", "foreign_names_in"]


class ForeignObject:
    """Stands in for an object of a class (or a function's result) named in a checkpoint; holds nothing of it."""

    foreign_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> ForeignObject:
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{self.foreign_name}: not loaded>"


def _placeholder(name: str) -> type[ForeignObject]:
    return type(name.rpartition(".")[2] or "Foreign", (ForeignObject,), {"foreign_name": name, "__module__": __name__})


def foreign_globals(path: str | os.PathLike[str]) -> list[str]:
    """The names of classes and functions the file's pickle mentions that ``weights_only`` does not allow.

    Read from the pickle's opcodes without running them; ``[]`` for a file that is not a
    torch zip checkpoint (the ordinary reader explains those).
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(os.fspath(path)))
    except Exception:  # noqa: BLE001 - not a readable torch archive: the ordinary reader says what is wrong
        return []


def read_inertly(path: str | os.PathLike[str], names: list[str]) -> dict[str, Any]:
    """The checkpoint with each of ``names`` read as an inert :class:`ForeignObject` (``weights_only`` stays on)."""
    placeholders = [(_placeholder(name), name) for name in names]
    with torch.serialization.safe_globals(placeholders), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    return state


def foreign_names_in(value: Any) -> set[str]:
    """The foreign names standing anywhere inside ``value`` (nested dicts, lists, tuples)."""
    if isinstance(value, ForeignObject):
        return {value.foreign_name}
    if isinstance(value, type) and issubclass(value, ForeignObject):
        return {value.foreign_name}
    if isinstance(value, Mapping):  # keys too: a placeholder can stand where a name is expected
        return set().union(*(foreign_names_in(k) | foreign_names_in(v) for k, v in value.items())) if value else set()
    if isinstance(value, (list, tuple, set)):
        return set().union(*(foreign_names_in(v) for v in value)) if value else set()
    return set()
