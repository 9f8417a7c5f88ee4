"""Sharded checkpoint storage: a ``torch.distributed.checkpoint`` (DCP) directory every rank writes.

A checkpoint ``iter_8.dcp/`` holds DCP's shard files and ``.metadata``, and our own
marker ``trainyard_checkpoint.pth`` (``meta`` and ``loop``, readable with
``weights_only=True``). It is made atomic as a file is: every rank writes into
``.iter_8.dcp.tmp-HOST-PID/``, rank 0 adds the marker once DCP has finished on
every rank, renames the directory, and only then updates ``last_checkpoint``. Rank 0
holds an ``flock`` on a file inside the temporary directory while the save is under
way, so the clean-up of abandoned temporaries (:func:`trainyard.checkpoint.remove_stale_temporaries`)
never takes a live one.

DCP's reader unpickles the non-tensor values it stored. Only directories carrying our
marker are ever read, and never through ``load_from`` (weights-only loading stays
file-only; :func:`consolidate` makes such a file).

This module knows nothing of the Runner: it moves the dictionaries
:class:`trainyard.training_state.TrainingState` gives and takes.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from trainyard import dist
from trainyard.errors import CheckpointError, CheckpointWriteError

__all__ = ["SUFFIX", "MARKER", "DcpWriter", "is_dcp_directory", "is_trainyard_dcp", "read_marker", "load_into", "consolidate"]

SUFFIX = ".dcp"
MARKER = "trainyard_checkpoint.pth"
_FORMAT = "trainyard-dcp/1"
_WRITING = ".trainyard-writing"
"""The file rank 0 holds locked inside a temporary directory while the save is under way."""


def _read_failures() -> tuple[type[BaseException], ...]:
    """DCP's read errors: its ``CheckpointException`` (a BaseException), a missing or cut shard file."""
    from torch.distributed.checkpoint.api import CheckpointException

    return (CheckpointException, OSError, EOFError)


def is_dcp_directory(path: Path) -> bool:
    """Whether ``path`` is a DCP directory (ours or anyone's)."""
    return path.is_dir() and ((path / ".metadata").is_file() or path.name.endswith(SUFFIX))


def is_trainyard_dcp(path: Path) -> bool:
    """Whether ``path`` is a complete DCP checkpoint a trainyard run wrote (every shard file there, long enough)."""
    return path.is_dir() and (path / ".metadata").is_file() and (path / MARKER).is_file() and _storage_problem(path) is None


def _storage_problem(path: Path) -> str | None:
    """What is missing from the storage files DCP's ``.metadata`` references (each at least offset + length bytes), or None."""
    try:
        storage = _saved_metadata(path).storage_data or {}
    except Exception as exc:  # noqa: BLE001 - a damaged .metadata
        return f"DCP's .metadata cannot be read ({type(exc).__name__}: {_first_line(exc)})"
    needed: dict[str, int] = {}
    for info in storage.values():
        name = str(getattr(info, "relative_path", ""))
        needed[name] = max(needed.get(name, 0), int(getattr(info, "offset", 0)) + int(getattr(info, "length", 0)))
    for name, size in sorted(needed.items()):
        file = path / name
        if not file.is_file():
            return f"its shard file {name} is missing"
        if file.stat().st_size < size:
            return f"its shard file {name} is cut short ({file.stat().st_size} of at least {size} bytes)"
    return None


def read_marker(path: Path) -> dict[str, Any]:
    """Our marker of a DCP directory (``meta``, ``loop``), read with ``weights_only=True``, or explain why not."""
    if not (path / MARKER).is_file():
        raise CheckpointError(
            f"{path} is a DCP directory that no trainyard run wrote (no {MARKER}); DCP unpickles what it reads, so "
            "trainyard reads (resumes, converts, predicts from) only its own DCP directories"
        )
    if not (path / ".metadata").is_file():
        raise CheckpointError(f"{path} is incomplete: DCP's .metadata is missing (a save that never finished, or a partial copy)")
    try:
        marker = torch.load(path / MARKER, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - one line for a damaged marker
        raise CheckpointError(f"{path / MARKER} is damaged ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(marker, Mapping) or marker.get("format") != _FORMAT or not isinstance(marker.get("meta"), Mapping):
        raise CheckpointError(f"{path / MARKER} is not a trainyard marker of format {_FORMAT}")
    problem = _storage_problem(path)
    if problem is not None:
        raise CheckpointError(f"{path} is incomplete: {problem} (a save that never finished, or a partial copy); use an earlier checkpoint")
    return dict(marker)


def _read_failure(path: Path, exc: BaseException) -> CheckpointError:
    """One line for a DCP read that failed (a shard damaged after the checks, an unreadable file)."""
    return CheckpointError(f"{path} could not be read ({type(exc).__name__}: {_first_line(exc)}); the checkpoint is damaged, use an earlier one")


def _shape_mismatches(path: Path, template: Mapping[str, Any], entries: Mapping[str, Any]) -> None:
    """The model's tensors against the sizes saved, before DCP's raw 'Size mismatch'."""
    mismatched = []
    for name, tensor in template.items():
        size = getattr(entries.get(f"state_dict.{name}"), "size", None)
        if isinstance(tensor, torch.Tensor) and size is not None and tuple(size) != tuple(tensor.shape):
            mismatched.append(f"{name}: checkpoint {tuple(size)} vs model {tuple(tensor.shape)}")
    if mismatched:
        listing = "; ".join(mismatched[:10]) + (f"; and {len(mismatched) - 10} more" if len(mismatched) > 10 else "")
        raise CheckpointError(f"{path} does not fit the model ({len(mismatched)} shape mismatches): {listing}")


_METADATA_MODULE = "torch.distributed.checkpoint.metadata"
_METADATA_EXTRAS = {
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("collections", "OrderedDict"),
}


class _MetadataUnpickler(pickle.Unpickler):
    """DCP's ``.metadata`` with only the classes it is made of: a crafted file cannot call anything else."""

    def find_class(self, module: str, name: str) -> Any:
        found = getattr(importlib.import_module(module), name, None) if module.startswith("torch") or module in ("pathlib", "collections") else None
        is_metadata_class = module == _METADATA_MODULE and isinstance(found, type) and found.__module__ == module
        if is_metadata_class or (module, name) in _METADATA_EXTRAS or isinstance(found, torch.dtype):
            return found
        raise pickle.UnpicklingError(f"{module}.{name}")


def _reader(path: Path) -> Any:
    """DCP's file reader, reading ``.metadata`` through :class:`_MetadataUnpickler` instead of plain pickle."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class MetadataCheckingReader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any) -> Any:
            with open(Path(self.path) / ".metadata", "rb") as file:
                metadata = _MetadataUnpickler(file).load()
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return MetadataCheckingReader(str(path))


def _saved_metadata(path: Path) -> Any:
    try:
        return _reader(path).read_metadata()
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}/.metadata refers to {exc}, which DCP's metadata never holds; it is not read (unpickling it could run code)"
        ) from None


def _saved_keys(path: Path) -> set[str]:
    return set(_saved_metadata(path).state_dict_metadata)


def _is_other_ranks(key: str, rank: int) -> bool:
    """Per-rank entries (``rng.rank_1...``, ``optimizer.partial_grads.rank_1...``) of another rank than ``rank``."""
    for prefix in ("rng.rank_", "optimizer.partial_grads.rank_"):
        if key.startswith(prefix):
            return key[len(prefix):].split(".")[0] != str(rank)
    return False


def load_into(template: dict[str, Any], path: Path) -> dict[str, Any]:
    """This rank's view of the checkpoint at ``path``; a collective call.

    ``template`` gives ``state_dict`` and ``optimizer['state']`` as this run holds them
    (DTensor shards under FSDP: DCP reshards into them, whatever world size saved).
    Everything else (hooks, schedules, this rank's random state and partial gradients)
    is read as saved, room for it made from DCP's own metadata, so a freshly built part
    with no state yet still gets its saved one. The result's ``optimizer`` says how many
    parameters had optimizer state when saved (``saved_entries``), so that a load that
    restored fewer is noticed. ``meta`` and ``loop`` come from our marker.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint._nested_dict import flatten_state_dict
    from torch.distributed.checkpoint._traverse import set_element

    marker = read_marker(path)
    metadata = _saved_metadata(path)
    entries, paths = metadata.state_dict_metadata, metadata.planner_data or {}
    _shape_mismatches(path, template["state_dict"], entries)
    shaped = {"state_dict": template["state_dict"]}
    if "optimizer" in template:
        shaped["optimizer"] = {"state": template["optimizer"]["state"]}
    wanted, mapping = flatten_state_dict(shaped)
    wanted = {key: value for key, value in wanted.items() if key in entries}
    rank = dist.get_rank()
    for key, entry in entries.items():
        if key in wanted or key.startswith(("state_dict.", "optimizer.state.")) or _is_other_ranks(key, rank):
            continue
        size = getattr(entry, "size", None)
        wanted[key] = None if size is None else torch.empty(size, dtype=entry.properties.dtype)
        mapping[key] = tuple(paths.get(key, key.split(".")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning))  # "assuming ... a single process", deprecations
        try:
            dcp.load(wanted, storage_reader=_reader(path))
        except _read_failures() as exc:
            raise _read_failure(path, exc) from None
    result: dict[str, Any] = {"rng": {}}
    for key, value in wanted.items():
        set_element(result, mapping[key], value)
    if "optimizer" in result:
        prefix = "optimizer.state.state."
        result["optimizer"]["saved_entries"] = len({key[len(prefix):].rsplit(".", 1)[0] for key in entries if key.startswith(prefix)})
    result["meta"], result["loop"] = dict(marker["meta"]), dict(marker["loop"])
    return result


class DcpWriter:
    """Writes DCP checkpoint directories atomically, in the foreground or (``async_save``) in the background.

    A background save copies the state to the CPU before returning (that is the time
    training waits), writes on its own gloo process group (a background save on the
    default group deadlocks with the training collectives), and is finished (marker,
    rename, pointer) by :meth:`poll` once done, by the next save, or by :meth:`wait`.
    ``on_written(path)`` runs on rank 0 once a checkpoint is complete under its name.
    """

    def __init__(self, work_dir: Path, async_save: bool = False) -> None:
        self.work_dir = work_dir
        self.async_save = async_save
        self._group: Any = None
        self._pending: dict[str, Any] | None = None

    def save(self, state: Mapping[str, Any], filename: str, on_written: Callable[[Path], None] | None = None) -> Path | None:
        """Write ``state`` (every rank its own) as ``work_dir/filename``; returns the path on rank 0 once complete, else None."""
        import torch.distributed.checkpoint as dcp
        from trainyard.checkpoint import _temporary_path

        self.wait()
        target = self.work_dir / filename
        temporary, lock, failure = None, None, None
        if dist.get_rank() == 0:
            try:
                temporary = _temporary_path(target)
                temporary.mkdir(parents=True)
                lock = _hold_writing_lock(temporary)
            except OSError as exc:
                failure = f"could not create {temporary}: {exc.strerror or exc}; earlier checkpoints are untouched"
        temporary, failure = dist.broadcast_object((str(temporary) if temporary else None, failure))
        if failure is not None:
            raise CheckpointWriteError(failure)
        marker = {"format": _FORMAT, "meta": dict(state["meta"]), "loop": dict(state.get("loop") or {})}
        payload = {k: v for k, v in state.items() if k != "meta"}
        pending = {"target": target, "temporary": Path(temporary), "lock": lock, "marker": marker, "on_written": on_written}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (FutureWarning, UserWarning))  # "assuming ... a single process", deprecations
                if self.async_save:
                    pending["future"] = dcp.async_save(payload, checkpoint_id=temporary, process_group=self._background_group())
                else:
                    dcp.save(payload, checkpoint_id=temporary)
        except Exception as exc:  # noqa: BLE001 - DCP raises the same failure on every rank
            self._abandon(pending)
            raise CheckpointWriteError(f"could not write checkpoint {target}: {_first_line(exc)}; earlier checkpoints are untouched") from exc
        self._pending = pending
        if self.async_save:
            return None
        path, failure = None, None
        try:
            path = self.wait()
        except CheckpointError as exc:  # rank 0 could not complete it: every rank stops at this save, not at a timeout
            failure = str(exc)
        failure = dist.broadcast_object(failure)
        if failure is not None:
            raise CheckpointWriteError(failure)
        return path

    def poll(self) -> None:
        """Finish a background save whose writing is done (rank 0 renames it); no collective, cheap to call often."""
        if self._pending is not None and dist.get_rank() == 0 and self._pending.get("future") is not None and self._pending["future"].done():
            self._finish()

    def wait(self) -> Path | None:
        """Finish the save under way, if any: wait for its writing, then rank 0 renames it and updates the pointer."""
        if self._pending is None:
            return None
        future = self._pending.get("future")
        if future is not None:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - the background write failed on some rank
                pending, self._pending = self._pending, None
                self._abandon(pending)
                raise CheckpointWriteError(f"could not write checkpoint {pending['target']}: {_first_line(exc)}; earlier checkpoints are untouched") from exc
        return self._finish() if dist.get_rank() == 0 else self._clear()

    def _clear(self) -> None:
        self._pending = None

    def _finish(self) -> Path:
        """Rank 0: marker into the finished directory, rename it, then the pointer."""
        from trainyard.checkpoint import _fsync_directory, _point_last_checkpoint_to, atomic_save

        pending, self._pending = self._pending, None
        target, temporary = pending["target"], pending["temporary"]
        try:
            atomic_save(pending["marker"], temporary / MARKER)
            _fsync_directory(temporary)
            replaced = target.with_name(f".{target.name}.old-{os.getpid()}") if target.exists() else None
            if replaced is not None:
                os.replace(target, replaced)
            os.replace(temporary, target)
            _fsync_directory(target.parent)
            if replaced is not None:
                shutil.rmtree(replaced, ignore_errors=True)
        except OSError as exc:
            self._abandon(pending)
            raise CheckpointError(f"could not complete checkpoint {target}: {exc.strerror or exc}; earlier checkpoints are untouched") from exc
        finally:
            if pending["lock"] is not None:
                pending["lock"].close()
        (target / _WRITING).unlink(missing_ok=True)
        _point_last_checkpoint_to(self.work_dir, target)
        if pending["on_written"] is not None:
            pending["on_written"](target)
        return target

    def _abandon(self, pending: Mapping[str, Any]) -> None:
        if pending.get("lock") is not None:
            pending["lock"].close()
            shutil.rmtree(pending["temporary"], ignore_errors=True)

    def _background_group(self) -> Any:
        """A gloo group of every rank for background saves (None without a process group)."""
        if not dist.is_distributed():
            return None
        if self._group is None:
            import torch.distributed as torch_dist

            self._group = torch_dist.new_group(backend="gloo")
        return self._group


def _hold_writing_lock(directory: Path) -> Any:
    """Rank 0 keeps this file open and locked until the directory is renamed: the sign of a save under way."""
    from trainyard.checkpoint import _lock_while_writing

    path = directory / _WRITING
    file = open(path, "wb")  # noqa: SIM115 - held open for the length of the save
    _lock_while_writing(file, path)
    return file


def remove_if_abandoned(directory: Path) -> int | None:
    """Delete a temporary DCP directory no process is writing; its size, or None while its writer holds it."""
    from trainyard.checkpoint import _remove_if_abandoned

    lock = directory / _WRITING
    if lock.exists() and _remove_if_abandoned(lock) is None:
        return None
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
    shutil.rmtree(directory, ignore_errors=True)
    return size


def consolidate(path: Path) -> dict[str, Any]:
    """The whole weights of a trainyard DCP checkpoint as ``{'meta', 'state_dict'}``, in this process only.

    Reads only the model's tensors (``state_dict.*``), none of the pickled values, and
    no other rank holds anything: for ``Predictor``, exports and ``convert-checkpoint``.
    """
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    marker = read_marker(path)
    keys = {key for key in _saved_keys(path) if key.startswith("state_dict.")}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loaded = _load_state_dict_from_keys(keys, storage_reader=_reader(path))
        except _read_failures() as exc:
            raise _read_failure(path, exc) from None
    weights = loaded.get("state_dict", {})
    if not weights:
        raise CheckpointError(f"{path} holds no model weights (no 'state_dict.*' entries)")
    meta = dict(marker["meta"])
    meta["consolidated_from"] = str(path)
    meta["consolidate_seconds"] = round(time.perf_counter() - started, 3)
    return {"meta": meta, "state_dict": dict(weights)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("Traceback", "  File"))]
    return (lines[-1] if lines else type(exc).__name__)[:300]
