"""What a checkpoint holds, asked of the parts that own it.

The Runner hands :class:`TrainingState` its parts (model, optimizer wrapper,
schedulers, train loop, hooks) and a function giving the run's ``meta``; each part
gives and takes its own state. Storage (:mod:`trainyard.checkpoint` for one file,
:mod:`trainyard.checkpoint_dcp` for a sharded directory) only moves the result.

Two layouts, one vocabulary (``meta``, ``state_dict``, ``optimizer``, ``scaler``,
``schedulers``, ``hooks``, ``loop``, ``rng``):

- :meth:`TrainingState.full`: one file written by rank 0. Whole weights and optimizer
  state; every rank's RNG in a list gathered to every rank, every rank's partial
  gradients (inside an accumulation window) gathered to rank 0.
- :meth:`TrainingState.sharded`: a DCP directory every rank writes. Weights and
  optimizer state from ``get_state_dict`` (DTensor shards under FSDP, keyed by
  parameter name), and per-rank values under per-rank keys (``rng['rank_1']``), since
  DCP keeps a value saved under the same key on every rank once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from trainyard import dist
from trainyard.errors import CheckpointError, ResumeMismatchError

__all__ = ["TrainingState", "is_sharded", "rng_state", "set_rng_state", "rank_key"]


def is_sharded(model: nn.Module) -> bool:
    """Whether the model's parameters are DTensor shards (FSDP2): its state must go through ``get_state_dict``."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def rank_key(rank: int) -> str:
    return f"rank_{rank}"


def rng_state() -> dict[str, Any]:
    """This process's torch, CUDA, numpy and python random states, as tensors and plain values."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "pos": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "python": {"version": python_state[0], "state": list(python_state[1]), "gauss": python_state[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _local(grad: torch.Tensor | None) -> torch.Tensor | None:
    """A rank's own part of a gradient (a DTensor's local shard), on the CPU."""
    if grad is None:
        return None
    return (grad.to_local() if hasattr(grad, "to_local") else grad).detach().cpu()


def _as_grad_of(param: torch.Tensor, local: torch.Tensor | None) -> torch.Tensor | None:
    """A saved local gradient, as the gradient ``param`` takes (a DTensor shard again under FSDP)."""
    if local is None or not hasattr(param, "device_mesh"):
        return local
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(local.to(param.to_local().device), param.device_mesh, param.placements, run_check=False)


def _refuse_other_world_size_inside_window(source: str, saved_iter: Any, saved_world_size: int, world_size: int) -> None:
    """A checkpoint saved inside an accumulation window continues only on as many processes as saved it.

    Each rank's partial gradients belong to the batches that rank read; on another
    world size some would be missing from (or doubled in) the window's optimizer step.
    """
    if saved_world_size == world_size:
        return
    raise ResumeMismatchError(
        f"{source} was saved inside a gradient-accumulation window (iteration {saved_iter}) "
        f"by {saved_world_size} processes, whose partial gradients cannot continue on {world_size}. Resume it on "
        f"{saved_world_size} processes, or from a checkpoint saved at the end of a window (an iteration divisible by "
        "optim_wrapper.accumulative_counts)"
    )


class TrainingState:
    """The training state of one run, gathered from and given back to its parts.

    Args:
        model: the user's model (unwrapped from DDP; the sharded module itself under FSDP).
        optim_wrapper: the :class:`~trainyard.optim.OptimWrapper`, or None.
        schedulers: the parameter schedules.
        loop: the train loop (``state_dict``/``load_state_dict`` of its position).
        hooks: the :class:`~trainyard.hooks.HookDispatcher` (each stateful hook's state).
        meta: gives the run's ``meta`` at the time of a save.
    """

    def __init__(self, model: nn.Module, optim_wrapper: Any, schedulers: list[Any], loop: Any, hooks: Any,
                 meta: Callable[[], dict[str, Any]], rank: int = 0, world_size: int = 1) -> None:
        self.model, self.optim_wrapper, self.schedulers = model, optim_wrapper, schedulers
        self.loop, self.hooks, self.meta = loop, hooks, meta
        self.rank, self.world_size = rank, world_size

    @property
    def sharded_model(self) -> bool:
        return is_sharded(self.model)

    def _common(self) -> dict[str, Any]:
        state: dict[str, Any] = {"meta": self.meta(), "hooks": self.hooks.state_dict()}
        if self.optim_wrapper is not None:
            state["schedulers"] = [s.state_dict() for s in self.schedulers]
        if self.loop is not None:
            state["loop"] = self.loop.state_dict()
        return state

    def full(self) -> dict[str, Any]:
        """The single-file layout; a collective call (RNG states are gathered, partial gradients gathered to rank 0)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        sharded = self.sharded_model
        whole = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = self._common()
        state["state_dict"] = get_model_state_dict(self.model, options=whole) if sharded else self.model.state_dict()
        state["rng"] = dist.all_gather_objects(rng_state())
        if self.optim_wrapper is not None:
            wrapper_state = self.optim_wrapper.state_dict()
            optimizer_state = (get_optimizer_state_dict(self.model, self.optim_wrapper.optimizer, options=whole)
                               if sharded else wrapper_state["optimizer"])
            state["optimizer"] = {"state": optimizer_state, "calls": wrapper_state["calls"]}
            if "partial_grads" in wrapper_state:
                partial_grads = dist.gather_objects([_local(grad) for grad in wrapper_state["partial_grads"]])
                if partial_grads is not None:
                    state["optimizer"]["partial_grads"] = partial_grads
            if "scaler" in wrapper_state:
                state["scaler"] = wrapper_state["scaler"]
        return state

    def sharded_template(self) -> dict[str, Any]:
        """``state_dict`` and ``optimizer['state']`` from ``get_state_dict`` (DTensor shards under FSDP), keyed by parameter name.

        ``get_state_dict`` fills an empty optimizer state with a zero step, which it
        skips while gradients exist (pytorch#140898): a template made then would load
        nothing. Gradients (kept inside an accumulation window) are set aside around it.
        """
        if self.optim_wrapper is None:
            return {"state_dict": self.model.state_dict()}
        from torch.distributed.checkpoint.state_dict import get_state_dict

        parameters = self.optim_wrapper._parameters()
        grads = [p.grad for p in parameters]
        for param in parameters:
            param.grad = None
        try:
            model_state, optimizer_state = get_state_dict(self.model, self.optim_wrapper.optimizer)
        finally:
            for param, grad in zip(parameters, grads):
                param.grad = grad
        return {"state_dict": model_state, "optimizer": {"state": optimizer_state}}

    def sharded(self) -> dict[str, Any]:
        """The DCP layout: each rank's shards, and its own values under per-rank keys (no collective here)."""
        state = {**self._common(), **self.sharded_template()}
        state["rng"] = {rank_key(self.rank): rng_state()}
        if self.optim_wrapper is None:
            return state
        wrapper_state = self.optim_wrapper.state_dict()
        state["optimizer"]["calls"] = wrapper_state["calls"]
        if "partial_grads" in wrapper_state:
            state["optimizer"]["partial_grads"] = {rank_key(self.rank): [_local(g) for g in wrapper_state["partial_grads"]]}
        if "scaler" in wrapper_state:
            state["scaler"] = wrapper_state["scaler"]
        return state

    def load(self, state: Mapping[str, Any], source: str, logger: logging.Logger | None = None) -> None:
        """Give each part its state back: model, optimizer (and scaler, partial gradients), schedules, hooks, loop, RNG.

        ``state`` is either layout; a sharded one must already hold this rank's
        values (:mod:`trainyard.checkpoint_dcp` loads them into :meth:`sharded`'s template).
        """
        from trainyard.checkpoint import load_model_state

        logger = logger or logging.getLogger("trainyard")
        meta = state["meta"]
        saved_world_size = meta.get("world_size")
        layout_sharded = isinstance(state.get("rng"), Mapping)
        partial_grads = (state.get("optimizer") or {}).get("partial_grads")
        if partial_grads is not None:
            saved = len(partial_grads) if not layout_sharded else int(saved_world_size or self.world_size)
            _refuse_other_world_size_inside_window(source, meta.get("iter"), saved, self.world_size)
        if layout_sharded or self.sharded_model:
            self._load_model_and_optimizer(state, full=not layout_sharded)
        else:
            load_model_state(self.model, state["state_dict"], source, strict=True)
        if "optimizer" in state and self.optim_wrapper is not None:
            wrapper_state: dict[str, Any] = {"calls": state["optimizer"]["calls"]}
            if not (layout_sharded or self.sharded_model):
                wrapper_state["optimizer"] = state["optimizer"]["state"]
            if partial_grads is not None:
                own = partial_grads[rank_key(self.rank)] if layout_sharded else partial_grads[self.rank]
                wrapper_state["partial_grads"] = [_as_grad_of(p, g) for p, g in zip(self.optim_wrapper._parameters(), own)]
            if "scaler" in state:
                wrapper_state["scaler"] = state["scaler"]
            self.optim_wrapper.load_state_dict(wrapper_state)
        for scheduler, scheduler_state in zip(self.schedulers, state.get("schedulers", [])):
            scheduler.load_state_dict(scheduler_state)
        self.hooks.load_state_dict(state.get("hooks", {}))
        self.loop.load_state_dict(state["loop"])
        rng = state.get("rng")
        own_rng = (rng or {}).get(rank_key(self.rank)) if layout_sharded else (rng[self.rank] if rng else None)
        if saved_world_size == self.world_size and own_rng is not None:
            set_rng_state(own_rng)
        else:
            logger.warning(
                f"resuming a run saved with world size {saved_world_size} on {self.world_size} processes: "
                "model and optimizer continue exactly; the random states of the saved processes do not carry over, "
                "so randomness (dropout) differs from an uninterrupted run"
            )

    def _load_model_and_optimizer(self, state: Mapping[str, Any], full: bool) -> None:
        """``set_state_dict`` with the optimizer's gradients cleared first, then check the optimizer state came back.

        With gradients present torch's loader skips initialising the optimizer state and
        restores nothing, silently (pytorch#140898).
        """
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        options = StateDictOptions(full_state_dict=full, strict=True)
        if self.optim_wrapper is None or "optimizer" not in state:
            from torch.distributed.checkpoint.state_dict import set_model_state_dict

            set_model_state_dict(self.model, state["state_dict"], options=options)
            return
        optimizer = self.optim_wrapper.optimizer
        optimizer.zero_grad(set_to_none=True)
        optimizer_state = state["optimizer"]["state"]
        set_state_dict(self.model, optimizer, model_state_dict=state["state_dict"], optim_state_dict=optimizer_state, options=options)
        expected = state["optimizer"].get("saved_entries", len(optimizer_state.get("state", {})))
        restored = len(optimizer.state)
        if restored < expected:
            raise CheckpointError(
                f"the optimizer state of {expected} parameters was saved, but only {restored} came back on loading; "
                "the checkpoint and the model do not match (another model, or frozen parameters changed)"
            )
