"""Checkpoint files: atomic writes, safe loads, choosing what to resume from, and foreign weights.

Policy (when to save, what to keep) is :class:`trainyard.hooks.checkpoint.CheckpointHook`'s;
what is saved is :class:`trainyard.training_state.TrainingState`'s; this module stores one
file and reads it back (a sharded directory is :mod:`trainyard.checkpoint_dcp`'s, and
resume and clean-up here take both). A checkpoint holds tensors and plain Python values
only, so ``torch.load(path, weights_only=True)`` reads it::

    meta        trainyard and torch versions, resolved config text, epoch, iter, seed,
                world size, time, run directory
    state_dict  the unwrapped model's weights
    optimizer   optimizer state, the accumulation position, and every rank's
                partial gradients when saved inside an accumulation window
    scaler      the AMP GradScaler's state, when float16 AMP is on
    schedulers  the schedules' settings (their values are functions of progress)
    hooks       each stateful hook's state, by class name (``Name#2`` for a second
                hook of the same class)
    loop        the train loop's position (finished iterations)
    rng         every rank's torch, CUDA, numpy and python random states

Loading is always ``weights_only=True``; a file holding other pickled objects is
refused unless the user names the classes to trust in ``TRAINYARD_SAFE_GLOBALS``.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import socket
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from trainyard import dist, foreign_checkpoint
from trainyard.errors import CheckpointError, CheckpointWriteError
from trainyard.strategies import load_model_weights

try:
    import fcntl
except ImportError:  # Windows: a file its writer holds open cannot be deleted, which tells the same
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LAST_CHECKPOINT",
    "atomic_save",
    "read_checkpoint",
    "read_foreign_checkpoint",
    "read_full_checkpoint",
    "write_on_rank_zero",
    "non_finite_weights",
    "resume_source",
    "run_dir_of",
    "load_weights",
    "load_pretrained_weights",
    "load_pretrained_state",
    "load_model_state",
    "weights_of",
    "ResumeSource",
    "remove_stale_temporaries",
    "remove_checkpoint",
    "checkpoints_of_earlier_run",
    "newest_intact_checkpoint",
    "last_checkpoint",
    "latest_first",
]

LAST_CHECKPOINT = "last_checkpoint"
DEFAULT_REVISE_KEYS: tuple[tuple[str, str], ...] = ((r"^module\.", ""), (r"^_orig_mod\.", ""))


# storage -----------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename itself is still atomic
    finally:
        os.close(fd)


_HOST = socket.gethostname().replace("-", "_")
_TEMPORARY = re.compile(r"^\..+\.tmp-(?:[^-]+-)?\d+$")
"""trainyard's temporary names: ``.NAME.tmp-HOST-PID``, and the older ``.NAME.tmp-PID``."""
_CHECKPOINT_NAME = re.compile(r"^(?:(?:epoch|iter)_\d+|best_.+_(?:epoch|iter)_\d+)\.(?:pth|dcp)$")
"""Periodic and best checkpoints: ``.pth`` files and ``.dcp`` directories (:mod:`trainyard.checkpoint_dcp`)."""


def _temporary_path(path: Path) -> Path:
    """``.NAME.tmp-HOST-PID``: one name per writer; whether it is still writing is its lock's to tell."""
    return path.with_name(f".{path.name}.tmp-{_HOST}-{os.getpid()}")


def _lock_while_writing(file: IO[bytes], path: Path) -> None:
    """The writer holds an exclusive ``flock`` on its temporary file until it is renamed and closed (or the process dies).

    A host name or PID in the name cannot tell a live save from an abandoned one: in
    containers PIDs repeat and host names change per pod. The lock can, also across
    machines sharing the volume (Linux maps ``flock`` to NFS locks). A cleaner that
    removed the file between its creation and the lock is noticed (the name no longer
    leads to the locked file), and the write fails loudly instead of vanishing.
    """
    if fcntl is None:
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX)
    try:
        same = os.path.samestat(os.fstat(file.fileno()), os.stat(path))
    except FileNotFoundError:
        same = False
    if not same:
        raise OSError(errno.ENOENT, "the temporary file was removed by another process before it was locked", str(path))


def _remove_if_abandoned(path: Path) -> int | None:
    """Delete a temporary file no process is writing and return its size; None while its writer holds it (or it is gone)."""
    try:
        if fcntl is None:
            size = path.stat().st_size
            path.unlink()  # Windows refuses to delete a file its writer still has open
        else:
            with open(path, "r+b") as file:  # r+: an exclusive lock on NFS needs a file open for writing
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                size = os.fstat(file.fileno()).st_size
                path.unlink()
    except OSError:
        return None
    return size


def remove_stale_temporaries(work_dir: Path) -> list[str]:
    """Delete temporary files of saves that no process is writing any more (a kill, a lost node).

    Only trainyard's own names are considered; one is stale when its writer's lock is
    free, whatever host and PID its name carries. Returns one line per removed file,
    with its size, for the log.
    """
    removed: list[str] = []
    if not work_dir.is_dir():
        return removed
    from trainyard.checkpoint_dcp import remove_if_abandoned

    for path in sorted(work_dir.iterdir()):
        if not _TEMPORARY.match(path.name):
            continue
        size = remove_if_abandoned(path) if path.is_dir() else _remove_if_abandoned(path)
        if size is not None:
            removed.append(f"removed {path.name} ({size / 2**20:.1f} MiB), left by an interrupted save")
    return removed


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(file)`` to a locked temporary file beside ``path``, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            _lock_while_writing(file, temporary)
            write(file)
            file.flush()
            os.fsync(file.fileno())
            os.replace(temporary, path)  # still locked: a cleaner never sees this file unlocked before the rename
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def atomic_save(state: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """``torch.save`` that never leaves a partial file at ``path``.

    An error (a full disk, a kill) leaves whatever was at ``path`` before untouched.
    """
    path = Path(path)
    try:
        _atomic_write(path, lambda file: torch.save(dict(state), file))
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc}; earlier checkpoints are untouched"
        ) from exc
    return path


def _write_last_checkpoint(work_dir: Path, path: Path) -> None:
    _atomic_write(work_dir / LAST_CHECKPOINT, lambda file: file.write(str(path.resolve()).encode()))


SAFE_GLOBALS_VARIABLE = "TRAINYARD_SAFE_GLOBALS"
_NEVER_TRUSTED_MODULES = frozenset(
    {"builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy", "pickle",
     "socket", "ctypes", "code", "codeop", "pty", "signal", "multiprocessing", "torch.hub", "functools", "operator"}
)


def _trusted_names() -> list[str]:
    return [n for n in (n.strip() for n in os.environ.get(SAFE_GLOBALS_VARIABLE, "").split(",")) if n]


def _trusted_globals() -> list[Any]:
    """Globals the user trusts explicitly: ``TRAINYARD_SAFE_GLOBALS=pkg.mod.Class,...``.

    Nothing from modules that reach the operating system or the interpreter is ever
    accepted: allowing ``os.system`` or ``builtins.eval`` would let a file run code,
    which is what ``weights_only=True`` exists to prevent.
    """
    trusted = []
    for name in _trusted_names():
        module, _, attr = name.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise CheckpointError(f"{SAFE_GLOBALS_VARIABLE} names '{name}', which cannot be imported: {exc}") from None
        if module in _NEVER_TRUSTED_MODULES or module.split(".")[0] in _NEVER_TRUSTED_MODULES:
            raise CheckpointError(
                f"{SAFE_GLOBALS_VARIABLE} names '{name}', which is never allowed: {module} can run commands or code, "
                "so allowing it would let a checkpoint file do so when loaded. Name only the data classes the "
                "refusal message lists (numpy.dtype, ...)"
            )
        trusted.append(obj)
    return trusted


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True`` onto the CPU, or explain why not."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        from trainyard.checkpoint_dcp import is_dcp_directory

        if is_dcp_directory(path):
            raise CheckpointError(
                f"{path} is a sharded (DCP) checkpoint directory, and weights are loaded only from single files "
                f"(DCP's reader unpickles). Consolidate it first: trainyard convert-checkpoint {path} --out {path.with_name(path.stem + '_consolidated.pth')}"
                " ; or continue its run with --resume"
            )
        raise CheckpointError(f"checkpoint {path} is a directory, not a file")
    trusted = _trusted_globals()
    try:
        with torch.serialization.safe_globals(trusted), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notes on pickle protocols: the error says it all
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(_explain_load_failure(path, exc)) from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint or state dict")
    return dict(state)


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint: a file, or a sharded checkpoint's directory."""
    if path.is_dir():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def is_checkpoint_directory(path: Path) -> bool:
    """Whether ``path`` is a sharded (DCP) checkpoint directory rather than a file."""
    from trainyard.checkpoint_dcp import is_dcp_directory

    return is_dcp_directory(path)


def read_full_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint file, or a trainyard DCP directory consolidated in this process (``meta`` and whole ``state_dict``).

    For readers of weights (``Predictor``, exports): a sharded checkpoint is read
    here without any other process, and only its model tensors.
    """
    from trainyard.checkpoint_dcp import consolidate, is_dcp_directory

    path = Path(path)
    return consolidate(path) if is_dcp_directory(path) else read_checkpoint(path)


def _explain_load_failure(path: Path, exc: Exception) -> str:
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"but got <class '([\w.]+)'>", text)
    if found is not None:
        allow = ",".join(dict.fromkeys([*_trusted_names(), found.group(1)]))
        return (
            f"{path} is a pickled checkpoint holding Python objects ({found.group(1)}), not only tensors and plain values; "
            "loading it could run arbitrary code, so trainyard refuses it. If you trust its source, allow that class "
            f"(loading stays weights_only=True): {SAFE_GLOBALS_VARIABLE}={allow} ; or re-save its tensors as a plain state dict"
        )
    with open(path, "rb") as file:
        head = file.read(4)
    if not head or (head == b"PK\x03\x04" and not _is_intact(path)):
        intact = newest_intact_checkpoint(path.parent, exclude=path)
        hint = f"the newest intact checkpoint in {path.parent} is {intact.name}" if intact else "use an earlier checkpoint"
        what = "empty" if not head else "incomplete or corrupt: not a complete archive"
        return f"{path} is {what} (a save that never finished, or a partial copy); {hint}"
    reason = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    detail = reason.group(1).strip() if reason else (text.strip().splitlines() or [type(exc).__name__])[0]
    return f"{path} is not a torch checkpoint, or is damaged ({type(exc).__name__}: {detail[:200]})"


def _is_intact(path: Path) -> bool:
    """Whether a file is a complete torch zip archive (every member's CRC checked, nothing unpickled), or a DCP directory complete with our marker."""
    if path.is_dir():
        from trainyard.checkpoint_dcp import is_trainyard_dcp

        return is_trainyard_dcp(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def _checkpoint_files(directory: Path) -> list[Path]:
    """trainyard's checkpoint files in ``directory`` (periodic and best)."""
    if not directory.is_dir():
        return []
    return [p for p in directory.iterdir() if _CHECKPOINT_NAME.match(p.name) and (p.is_file() or p.suffix == ".dcp" and p.is_dir())]


def _saved_progress(path: Path) -> tuple[int, int] | None:
    """``(iter, epoch)`` from a checkpoint's ``meta``, without reading its tensors (memory-mapped); None if unreadable."""
    try:
        if path.is_dir():
            from trainyard.checkpoint_dcp import read_marker

            meta = read_marker(path)["meta"]
            return int(meta["iter"]), int(meta["epoch"])
        with torch.serialization.safe_globals(_trusted_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            meta = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["meta"]
        return int(meta["iter"]), int(meta["epoch"])
    except Exception:  # noqa: BLE001 - a file that cannot say is tried first; loading it explains why
        return None


def latest_first(paths: Sequence[Path], hint: Path | None = None) -> list[Path]:
    """Checkpoints furthest in training first, by their saved iteration and epoch.

    Modification times are no guide (``cp -r`` without ``-p`` reorders them); they only
    break ties after ``hint`` (the file ``last_checkpoint`` names), as the best file saved
    after validation at the same iteration as a periodic one. Unreadable files come
    first: they may be the newest (a save cut short), and a resume says why it skips them.
    """
    hinted = hint.resolve() if hint is not None else None

    def position(path: Path) -> tuple[bool, tuple[int, int], bool, int]:
        progress = _saved_progress(path)
        return progress is None, progress or (0, 0), path.resolve() == hinted, path.stat().st_mtime_ns

    return sorted(paths, key=position, reverse=True)


def checkpoints_of_earlier_run(work_dir: Path) -> list[Path]:
    """The checkpoint files and pointer a previous run left in ``work_dir`` (latest first)."""
    found = latest_first(_checkpoint_files(work_dir))
    pointer = work_dir / LAST_CHECKPOINT
    return found + [pointer] if pointer.is_file() else found


def newest_intact_checkpoint(directory: Path, exclude: Path | None = None) -> Path | None:
    """The checkpoint in ``directory`` furthest in training whose archive is complete."""
    for path in latest_first(_checkpoint_files(directory), _pointer_target(directory)):
        if (exclude is None or path.resolve() != exclude.resolve()) and _is_intact(path):
            return path
    return None


# saving ------------------------------------------------------------------------


def non_finite_weights(model: torch.nn.Module) -> list[str]:
    """Names of the model's parameters holding NaN or infinity, and of its floating-point buffers holding NaN (one device sync).

    Buffers count because a batch-norm running statistic can turn NaN while the loss
    stays finite; only NaN, since a buffer may hold infinity by design (an attention mask).
    Under FSDP each rank checks its own shards and every rank gets the names all found (a collective).
    """
    from torch.distributed.tensor import DTensor

    parameters = [(name, p.detach()) for name, p in model.named_parameters() if p.is_floating_point()]
    sharded = any(isinstance(p, DTensor) for _, p in parameters)
    parameters = [(name, p.to_local() if isinstance(p, DTensor) else p) for name, p in parameters]
    buffers = [(name, b) for name, b in model.named_buffers() if b.is_floating_point()]
    checks = [torch.isfinite(p).all() for _, p in parameters] + [~torch.isnan(b).any() for _, b in buffers]
    broken = [name for (name, _), ok in zip(parameters + buffers, torch.stack(checks).cpu().tolist()) if not ok] if checks else []
    if sharded:
        found = {name for names in dist.all_gather_objects(broken) for name in names}
        broken = [name for name, _ in parameters + buffers if name in found]
    return broken


def write_on_rank_zero(state: Mapping[str, Any], work_dir: Path, filename: str, rank: int) -> Path | None:
    """Rank 0 writes ``work_dir/filename`` and the pointer; every rank learns how that went; a collective call.

    Without the shared outcome a failed write ends rank 0 alone, and the others wait in
    their next collective until ``env_cfg.timeout`` (NCCL never notices a rank that
    left). An error that is not about storage (a hook put in something torch cannot
    save) keeps its traceback on rank 0; the other ranks stop silently.
    """
    path, failure, error = None, None, None
    if rank == 0:
        try:
            path = atomic_save(state, work_dir / filename)
            _point_last_checkpoint_to(work_dir, path)
        except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then raised below
            error = exc
            failure = str(exc) if isinstance(exc, CheckpointError) else f"rank 0 could not write {filename} ({type(exc).__name__}: {exc})"
    failure = dist.broadcast_object(failure)
    if error is not None and not isinstance(error, CheckpointError):
        raise error
    if failure is not None:
        raise CheckpointWriteError(failure) from error
    return path


def _point_last_checkpoint_to(work_dir: Path, path: Path) -> None:
    try:
        _write_last_checkpoint(work_dir, path)
    except OSError as exc:
        raise CheckpointError(
            f"wrote {path}, but could not update {work_dir / LAST_CHECKPOINT}: {exc.strerror or exc}; "
            f"{path.name} is complete: continue with --resume {path}"
        ) from exc


# resume and load ----------------------------------------------------------------


class ResumeSource:
    """A checkpoint chosen for resuming, read once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sharded = path.is_dir()
        """A DCP directory: ``state`` holds only ``meta`` and ``loop`` (our marker) until the parts exist to load into."""
        if self.sharded:
            from trainyard.checkpoint_dcp import read_marker

            self.state = read_marker(path) if path.name.endswith(".dcp") or (path / ".metadata").is_file() else read_checkpoint(path)
        else:
            self.state = read_checkpoint(path)
        for key in ("meta", "loop") if self.sharded else ("meta", "state_dict", "loop"):
            if key not in self.state:
                raise CheckpointError(f"{path} cannot be resumed from: it has no '{key}' (a weights-only file? use load_from)")
        problem = _resume_state_problem(self.state)
        if problem:
            raise CheckpointError(f"{path} cannot be resumed from: {problem}; it was not written by trainyard, or was altered")


def _is_count(value: Any, lowest: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value < 2**63


def _resume_state_problem(state: Mapping[str, Any]) -> str | None:
    """What in a checkpoint's resume state is not what trainyard writes (a file from elsewhere is data to check, not trust)."""
    meta, loop, optimizer = state["meta"], state["loop"], state.get("optimizer", {})
    if not isinstance(meta, Mapping) or not isinstance(loop, Mapping) or not isinstance(optimizer, Mapping):
        return "'meta', 'loop' and 'optimizer' must be dicts"
    if meta.get("seed") is not None and not _is_count(meta["seed"]):
        return f"meta['seed'] is {meta['seed']!r}, not a whole number"
    if not _is_count(loop.get("iter")) or not _is_count(loop.get("iters_per_epoch", 1), lowest=1):
        return f"loop position {dict(loop)!r} is not an iteration count with a positive epoch length"
    if not isinstance(optimizer.get("partial_grads", []), list) or not isinstance(state.get("rng", []), list):
        return "optimizer['partial_grads'] and 'rng' must be lists (one entry per rank)"
    return None


def _pointer_target(work_dir: Path) -> Path | None:
    """The file ``last_checkpoint`` names; in a copied or moved work dir, the work dir's own file of that name."""
    pointer = work_dir / LAST_CHECKPOINT
    if not pointer.is_file():
        return None
    target = Path(pointer.read_text().strip())
    if (work_dir / target.name).exists():
        return work_dir / target.name
    return target if target.is_absolute() else work_dir / target


def last_checkpoint(work_dir: Path) -> Path | None:
    """The file ``last_checkpoint`` names, when it exists."""
    target = _pointer_target(work_dir)
    return target if target is not None and target.exists() else None


def last_good_checkpoint_text(work_dir: Path) -> str:
    """A sentence naming the checkpoint a resume would start from, for error messages."""
    target = last_checkpoint(work_dir)
    if target is not None:
        return f"The last good checkpoint is {target}; continue with --resume after fixing the cause."
    return "No checkpoint was written before."


def resume_source(resume: bool | str | None, work_dir: Path) -> tuple[ResumeSource | None, list[str]]:
    """The checkpoint to resume from, and why it was chosen (lines for the log).

    ``True``/``'auto'``: the checkpoint of this work directory furthest in training (by
    its saved iteration and epoch) that loads. The ``last_checkpoint`` pointer is a
    hint: a checkpoint completed after it (the run was killed between the two writes)
    is newer and is taken, and a pointer naming a missing or damaged file falls back to
    the newest intact one. Nothing to resume from means a fresh start. A path resumes
    from that file.
    """
    if not resume:
        return None, []
    if resume is not True and resume != "auto":
        return ResumeSource(Path(resume)), []
    pointer = _pointer_target(work_dir)
    candidates = _checkpoint_files(work_dir)
    if pointer is not None and pointer.exists() and pointer.resolve() not in {c.resolve() for c in candidates}:
        candidates.append(pointer)
    candidates = latest_first(candidates, pointer)
    notes: list[str] = []
    if pointer is not None and not pointer.exists():
        notes.append(f"{work_dir / LAST_CHECKPOINT} names {pointer}, which does not exist")
    for path in candidates:
        try:
            source = ResumeSource(path)
        except CheckpointError as exc:
            notes.append(f"skipped {path.name}: {exc}")
            continue
        if pointer is not None and pointer.exists() and path.resolve() != pointer.resolve():
            if (_saved_progress(pointer) or (-1, -1)) < (_saved_progress(path) or (-1, -1)):
                notes.append(f"{path.name} is newer than {pointer.name}, which last_checkpoint names: "
                             "the run stopped after writing it but before updating the pointer")
        notes.append(f"resuming from {path}")
        return source, notes
    if candidates or pointer is not None:
        raise CheckpointError(
            f"resume='auto' found no usable checkpoint in {work_dir}: " + "; ".join(notes)
            + ". Resume from a file with --resume PATH, or start afresh in another --work-dir"
        )
    return None, [f"resume='auto': no checkpoint in {work_dir} yet, so training starts from the beginning"]


def run_dir_of(source: ResumeSource | None) -> Path | None:
    if source is None:
        return None
    run_dir = source.state["meta"].get("run_dir")
    return Path(run_dir) if run_dir else None


def load_model_state(
    model: torch.nn.Module, weights: Mapping[str, Any], source: str, strict: bool, advice: str = ""
) -> tuple[list[str], list[str]]:
    """Load matching keys; a shape mismatch is an error naming the keys, and so are missing or extra keys when ``strict``.

    ``advice`` ends the strict error: how the caller's user asks for a partial load.
    """
    own = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in weights.items()
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape
    ]
    if mismatched:
        listing = "; ".join(mismatched[:10]) + (f"; and {len(mismatched) - 10} more" if len(mismatched) > 10 else "")
        raise CheckpointError(f"{source} does not fit the model ({len(mismatched)} shape mismatches): {listing}")
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{source} does not match the model: missing keys {missing[:10]}, unexpected keys {unexpected[:10]}{advice}"
        )
    load_model_weights(model, weights, strict=False)  # full weights into an FSDP-sharded model too
    return missing, unexpected


def read_foreign_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``load_from``'s reader: :func:`read_checkpoint`, or, for a file that also pickled another
    program's objects (a raw MMEngine training checkpoint), its plain parts with none of those objects run.

    Returns the state without the top-level keys that held such objects, and those keys
    with the class names they held (``{'message_hub': ['mmengine...HistoryBuffer', ...]}``),
    for the log. Weights that hold such objects are refused. Resume and every other reader
    keep :func:`read_checkpoint`'s refusal.
    """
    _trusted_globals()  # a mistake in TRAINYARD_SAFE_GLOBALS is the user's to fix, not one to read around
    try:
        return read_checkpoint(path), {}
    except CheckpointError:
        names = foreign_checkpoint.foreign_globals(path)
        if not names:
            raise
    try:
        state = foreign_checkpoint.read_inertly(path, names)
    except Exception as exc:  # noqa: BLE001 - torch's unpickler refused the file; say why in one line
        boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")  # torch's advice to load unsafely
        lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.strip().startswith(boilerplate)]
        reason = (lines or [type(exc).__name__])[0].removeprefix("WeightsUnpickler error: ")
        raise CheckpointError(f"{path} holds Python objects ({', '.join(names[:5])}) that cannot be read safely: {reason[:300]}") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint or state dict")
    skipped = {key: sorted(held) for key, value in state.items() if (held := foreign_checkpoint.foreign_names_in(value))}
    for key in ("state_dict", "model", "model_state_dict"):
        if key in skipped:
            raise CheckpointError(
                f"{path}: its '{key}' holds Python objects ({', '.join(skipped[key][:5])}), not only tensors; "
                "re-save the weights as a plain state dict"
            )
    return {k: v for k, v in state.items() if k not in skipped}, skipped


def weights_of(state: Mapping[str, Any]) -> Mapping[str, Any]:
    """The weights inside trainyard, OpenMMLab (``state_dict``), Lightning or bare state-dict files."""
    for key in ("state_dict", "model", "model_state_dict"):
        inner = state.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return inner
    if state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return state
    raise CheckpointError("the file holds no weights: no 'state_dict' and not a bare state dict of tensors")


def _revise_keys(weights: Mapping[str, Any], rules: Sequence[Sequence[str]]) -> dict[str, Any]:
    revised = {}
    for key, value in weights.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        revised[key] = value
    return revised


def load_pretrained_weights(module: torch.nn.Module, path: str | os.PathLike[str],
                            revise_keys: Sequence[Sequence[str]] = DEFAULT_REVISE_KEYS) -> list[str]:
    """Initialise ``module`` from a local weights file, keeping what does not fit fresh.

    For a model's own ``checkpoint`` argument (fine-tuning from torchvision, timm or
    trainyard weights, read with ``weights_only=True``): keys whose shape differs
    (a head for another class count) are skipped and stay as initialised; each
    skipped, missing or unexpected key is reported in the log. Returns the skipped keys.
    """
    try:
        weights = _revise_keys(weights_of(read_checkpoint(path)), revise_keys)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None
    return load_pretrained_state(module, weights, str(path))


def load_pretrained_state(module: torch.nn.Module, weights: Mapping[str, Any], source: str) -> list[str]:
    """Initialise ``module`` from ``weights`` read from ``source``, keeping what does not fit fresh, and log the outcome.

    The log names the source with the counts of loaded, missing, unexpected and
    re-initialised (shape differs) keys, then lists each non-empty kind by key.
    Returns the re-initialised keys.
    """
    import logging

    own = module.state_dict()
    skipped = [k for k, v in weights.items() if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape]
    fitting = {k: v for k, v in weights.items() if k not in skipped}
    missing, unexpected = load_model_state(module, fitting, source, strict=False)
    missing = sorted(set(missing) - set(skipped))
    logger = logging.getLogger("trainyard")
    logger.info(
        f"initialised {type(module).__name__} from {source}: {len(fitting) - len(unexpected)} keys loaded, "
        f"{len(missing)} missing, {len(unexpected)} unexpected, {len(skipped)} re-initialised"
    )
    for what, keys in (("skipped (shape differs; re-initialised)", [
        f"{k}: file {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}" for k in skipped
    ]), ("missing from the file (left as initialised)", missing), ("in the file but not in the model", unexpected)):
        if keys:
            logger.warning(f"{source}: keys {what} ({len(keys)}): {', '.join(keys)}")
    return skipped


def load_weights(runner: Any, load_from: str | Mapping[str, Any], default_strict: bool = False) -> dict[str, Any]:
    """Load model weights only (``load_from``) into ``runner.unwrapped_model``, reporting missing and unexpected keys
    to ``runner.logger``; returns the file's ``meta``.

    ``load_from`` is a path, or ``dict(path=..., revise_keys=[(regex, replacement), ...],
    strict=False)``; ``revise_keys`` renames checkpoint keys before matching (the
    default strips ``module.`` and ``_orig_mod.``). Without ``strict`` in ``load_from``,
    ``default_strict`` decides: off for fine-tuning, where a partial load is normal; on
    for evaluation, where a missing key would score a partly random model.
    """
    options = {"path": load_from} if isinstance(load_from, (str, os.PathLike)) else dict(load_from)
    path = options.pop("path", None)
    if path is None:
        raise CheckpointError("load_from needs a 'path'")
    rules = options.pop("revise_keys", DEFAULT_REVISE_KEYS)
    strict = options.pop("strict", default_strict)
    if options:
        raise CheckpointError(f"load_from has unknown keys {sorted(options)}; use path, revise_keys, strict")
    try:
        state, foreign = read_foreign_checkpoint(path)
        weights = _revise_keys(weights_of(state), rules)
    except CheckpointError as exc:
        raise CheckpointError(f"load_from {path}: {exc}") from None
    advice = "; to load only the matching keys on purpose, set load_from=dict(path=..., strict=False) (trainyard test/val: --non-strict)"
    missing, unexpected = load_model_state(runner.unwrapped_model, weights, str(path), strict, advice)
    runner.logger.info(f"loaded weights from {path}")
    if foreign:
        listing = "; ".join(f"{key} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" for key, names in foreign.items())
        runner.logger.info(
            f"{path} also pickled other programs' objects, read as inert placeholders (nothing imported or run) "
            f"and skipped: {listing}"
        )
    if missing:
        runner.logger.warning(f"keys of the model missing from {path} ({len(missing)}): {', '.join(missing)}")
    if unexpected:
        runner.logger.warning(f"keys of {path} the model does not have ({len(unexpected)}): {', '.join(unexpected)}")
    meta = state.get("meta")
    return dict(meta) if isinstance(meta, Mapping) else {}
