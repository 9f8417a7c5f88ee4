"""Saving and resuming a run: its :class:`~trainyard.training_state.TrainingState` in the storage that fits.

Two storages, one contract (atomic, ``last_checkpoint`` updated last, keep-N and best
decided by :class:`~trainyard.hooks.checkpoint.CheckpointHook` from what is on disk):

- ``'file'``: one ``torch.save`` file, written by rank 0 (:mod:`trainyard.checkpoint`);
- ``'dcp'``: a ``torch.distributed.checkpoint`` directory every rank writes its
  shards into (:mod:`trainyard.checkpoint_dcp`), optionally in the background.

``'auto'`` picks ``'dcp'`` for a sharded model (FSDP2: DTensor parameters, whose
whole state may not fit one process) and ``'file'`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainyard import checkpoint, checkpoint_dcp
from trainyard.errors import ConfigError, NonFiniteError
from trainyard.training_state import TrainingState

__all__ = ["Checkpointer", "SAVE_FORMATS"]

SAVE_FORMATS = ("auto", "file", "dcp")


class Checkpointer:
    """Writes and restores one run's training state.

    Args:
        state: the run's parts, as :class:`TrainingState`.
        work_dir: where checkpoints and ``last_checkpoint`` go.
        call_hook: calls a hook point (``before_save_checkpoint``, ``after_load_checkpoint``).
    """

    def __init__(self, state: TrainingState, work_dir: Path, call_hook: Callable[..., None], logger: logging.Logger | None = None) -> None:
        self.state = state
        self.work_dir = work_dir
        self.call_hook = call_hook
        self.logger = logger or logging.getLogger("trainyard")
        self._dcp_writers: dict[bool, checkpoint_dcp.DcpWriter] = {}

    def storage_for(self, save_format: str = "auto") -> str:
        """``'file'`` or ``'dcp'``, for a requested ``save_format``."""
        if save_format not in SAVE_FORMATS:
            raise ConfigError(f"CheckpointHook save_format must be one of {', '.join(SAVE_FORMATS)}, got {save_format!r}")
        if save_format == "auto":
            return "dcp" if self.state.sharded_model else "file"
        return save_format

    def save(self, filename: str, save_format: str = "auto", async_save: bool = False,
             on_written: Callable[[Path], None] | None = None) -> Path | None:
        """Save as ``filename`` (``iter_8.pth``; a DCP directory is named ``iter_8.dcp``); a collective call.

        Weights holding NaN or infinity are never written (:class:`NonFiniteError`), so
        keep-last-N never deletes the last good checkpoint. ``on_written(path)`` runs on
        rank 0 once the checkpoint is complete under its final name (for a background
        save: later, see :meth:`poll`). Returns the path on rank 0 when complete now.
        """
        storage = self.storage_for(save_format)
        if async_save and storage != "dcp":
            raise ConfigError("CheckpointHook async_save=True needs save_format='dcp' (a single file is written by rank 0 alone)")
        state = self.state.sharded() if storage == "dcp" else self.state.full()
        self.call_hook("before_save_checkpoint", checkpoint=state)
        broken = checkpoint.non_finite_weights(self.state.model)
        if broken:
            raise NonFiniteError(
                f"the weights became NaN or infinite by iteration {state['meta'].get('iter')} ({', '.join(broken[:5])}"
                f"{', ...' if len(broken) > 5 else ''}); {filename} was not written. {checkpoint.last_good_checkpoint_text(self.work_dir)}"
            )
        if storage == "file":
            if self.state.sharded_model:
                from trainyard.strategies import gather_full_tensors

                state = gather_full_tensors(state)  # DTensors hooks added (EMA under FSDP); a collective
            path = checkpoint.write_on_rank_zero(state, self.work_dir, filename, self.state.rank)
            if path is not None and on_written is not None:
                on_written(path)
            return path
        writer = self._dcp_writers.setdefault(async_save, checkpoint_dcp.DcpWriter(self.work_dir, async_save))
        return writer.save(state, Path(filename).stem + checkpoint_dcp.SUFFIX, on_written)

    def poll(self) -> None:
        """Complete background saves that finished writing (cheap; no collective)."""
        for writer in self._dcp_writers.values():
            writer.poll()

    def wait(self) -> None:
        """Complete every save under way (a collective call when one is in the background)."""
        for writer in self._dcp_writers.values():
            writer.wait()

    def restore(self, source: checkpoint.ResumeSource) -> dict[str, Any]:
        """Load ``source`` into every part, then call ``after_load_checkpoint``; returns the loaded state."""
        if source.sharded:
            state = checkpoint_dcp.load_into(self.state.sharded_template(), source.path)
        else:
            state = source.state
        self.state.load(state, str(source.path), self.logger)
        self.logger.info(f"resumed from {source.path} at epoch {self.state.loop.epoch}, iteration {self.state.loop.iter}")
        self.call_hook("after_load_checkpoint", checkpoint=state)
        return state
