"""Model-parallel strategies: how the model is spread over processes, chosen by ``model_wrapper_cfg``.

One small class per strategy. The Runner asks its strategy to :meth:`wrap` the model
once; the optimizer wrapper asks it for gradient synchronisation on accumulation
micro-steps and for gradient-norm clipping; checkpointing may ask it for full state
dicts. ``model_wrapper_cfg``::

    model_wrapper_cfg = dict(type='DDP', find_unused_parameters=False, sync_bn=False)  # the default
    model_wrapper_cfg = dict(
        type='FSDP',                           # FSDP2: torch.distributed.fsdp.fully_shard
        shard=['Bottleneck'],                  # block classes sharded one by one (default: the
                                               # model's _no_split_modules), then the root
        reshard_after_forward=True,
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32'),
        activation_checkpointing=['Bottleneck'],
        cpu_offload=False,
    )
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from trainyard.errors import ConfigError
from trainyard.openmmlab_keys import ddp_arguments, ddp_parameters

NO_CONTEXT: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
"""The one do-nothing context (reusable): what :meth:`Strategy.gradient_sync` returns when gradients are synchronised."""

__all__ = [
    "Strategy",
    "SingleProcessStrategy",
    "DDPStrategy",
    "FSDPStrategy",
    "build_strategy",
    "torch_release",
    "gather_full_tensors",
    "load_model_weights",
]

FSDP_TYPES = frozenset({"FSDP", "FSDP2"})
FSDP_GLOO_FLOOR = (2, 9)
"""FSDP2 on gloo errors on torch 2.5-2.6 and gets gradients 2x too large on 2.7-2.8 (pytorch issue 162338)."""
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}
_NORM_LAYERS = (nn.modules.batchnorm._BatchNorm,)


def torch_release() -> tuple[int, int]:
    """``(major, minor)`` of the installed torch (a function so tests can pretend another release)."""
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def _is_dtensor(tensor: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def gather_full_tensors(obj: Any) -> Any:
    """``obj`` with every DTensor (in nested dicts, lists, tuples) replaced by its full tensor on the CPU.

    A collective: every rank calls it on a structure of the same layout, in the same order.
    """
    if _is_dtensor(obj):
        return obj.full_tensor().cpu()
    if isinstance(obj, Mapping):
        return {key: gather_full_tensors(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [gather_full_tensors(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(gather_full_tensors(value) for value in obj)
    return obj


class Strategy:
    """One process, nothing shared: the base every strategy refines.

    ``model`` is the user's module (for FSDP the same object, sharded in place);
    ``wrapped`` is what the Runner calls (the DDP wrapper for DDP).
    """

    name = "single"
    shards_parameters = False

    def __init__(self, broadcast_buffers: bool | None = None) -> None:
        self.model: nn.Module | None = None
        self.wrapped: nn.Module | None = None
        self.buffers = _BUFFER_POLICIES[broadcast_buffers]
        """How rank 0's buffers reach the other ranks (``model_wrapper_cfg.broadcast_buffers``): ``'evaluation'``
        (unset: at the start and before each evaluation), ``'every_forward'`` (True: also before each forward
        with gradients, DDP's own default) or ``'rank_local'`` (False: never; each rank keeps its own)."""

    def wrap(self, model: nn.Module) -> nn.Module:
        self.model = self.wrapped = model
        return model

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Raise if ``optimizer`` cannot train the wrapped model (only FSDP can get this wrong)."""

    def check_save_points(self, accumulative_counts: int, hooks: Iterable[Any], iters_per_epoch: int | None) -> None:
        """Raise before training if a periodic checkpoint would fall inside an accumulation window (only FSDP cannot save there)."""

    def gradient_sync(self, enabled: bool) -> contextlib.AbstractContextManager[None]:
        """Around a forward (and, for FSDP, until the next call: through its backward) on an accumulation micro-step.

        :data:`NO_CONTEXT` itself where nothing is to be done, so a caller can tell by identity and skip it.
        """
        return NO_CONTEXT

    def share_buffers(self) -> None:
        """Before an evaluation: every rank takes rank 0's buffers (a collective where there are several processes).

        While training, each rank's batch norms update their running statistics from
        that rank's batches alone, and only rank 0's reach a checkpoint. Copying them to
        every rank before validation or test makes every rank evaluate the model a
        checkpoint holds, and a resumed run's scores equal an uninterrupted one's.
        Nothing is copied where the config keeps buffers per rank (``broadcast_buffers=False``).
        """
        if self.buffers != "rank_local" and self.model is not None:
            _broadcast_from_rank_zero([b for b in self.model.buffers() if not _is_dtensor(b)])

    def clip_grad_norm_(self, parameters: Iterable[torch.Tensor], **options: Any) -> torch.Tensor:
        """Clip gradients by their total norm over all ranks; returns that norm as a plain tensor."""
        return torch.nn.utils.clip_grad_norm_(list(parameters), **options)

    def model_state_dict(self) -> dict[str, Any]:
        """The full model state dict on the CPU, on rank 0 (a collective under FSDP; ``{}`` on other ranks there)."""
        return {key: value.cpu() for key, value in self.model.state_dict().items()}

    def load_model_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
        """Load a full state dict that every rank passes (or, under FSDP, the model's own sharded one).

        Returns the missing and unexpected keys.
        """
        return load_model_weights(self.model, state, strict)

    def optimizer_state_dict(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
        optimizer.load_state_dict(state)


class SingleProcessStrategy(Strategy):
    """One process: the model as built."""


class DDPStrategy(Strategy):
    """torch's ``DistributedDataParallel`` (with trainyard's ``sync_bn``): the default for more than one process."""

    name = "ddp"

    def __init__(self, options: Mapping[str, Any], device: torch.device) -> None:
        options = ddp_arguments(options)
        choice = options.get("broadcast_buffers")
        if choice is None and options.get("forward_sync_buffers") is True:  # torch 2.14's name for the same
            choice = True
        super().__init__(_broadcast_buffers_option(choice))
        self.options = _ddp_buffer_options(options)
        self.device = device

    def wrap(self, model: nn.Module) -> nn.Module:
        options = dict(self.options)
        if options.pop("sync_bn", False):
            if self.device.type != "cuda":
                raise ConfigError("model_wrapper_cfg.sync_bn=True needs CUDA (torch's SyncBatchNorm runs on GPUs only); "
                                  "set it to False on the CPU")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.model = model
        self.wrapped = nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **options)
        if self.buffers == "evaluation":
            _broadcast_from_rank_zero(list(model.buffers()))  # DDP before torch 2.14 skips this when it skips the forward copy
        return self.wrapped

    def gradient_sync(self, enabled: bool) -> contextlib.AbstractContextManager[None]:
        return NO_CONTEXT if enabled else self.wrapped.no_sync()


class FSDPStrategy(Strategy):
    """FSDP2 (``torch.distributed.fsdp.fully_shard``) on a one-dimensional ``DeviceMesh`` of every process.

    Each module whose class is named in ``shard`` (default: the model's
    ``_no_split_modules``, the attribute Hugging Face and Accelerate use) becomes one
    unit of all-gather and reduce-scatter, then the root takes the remaining
    parameters. Under ``mixed_precision`` batch-norm layers keep float32 parameters
    (their own unit), as FSDP1 did: their running statistics are float32.

    Buffers (batch-norm running statistics) are not sharded, and each rank updates its
    own from its own batches, as under DDP: rank 0's, which a checkpoint holds, are
    copied to every rank at the start and before each evaluation
    (:meth:`Strategy.share_buffers`), and with ``broadcast_buffers=True`` before each
    forward as DDP does, so every rank's buffers and validation are those of a DDP run
    on the same data and the same option.
    """

    name = "fsdp"
    shards_parameters = True
    ACCEPTED_KEYS = ("type", "shard", "reshard_after_forward", "mixed_precision", "activation_checkpointing", "cpu_offload",
                     "broadcast_buffers")

    def __init__(self, options: Mapping[str, Any], device: torch.device, backend: str | None, world_size: int) -> None:
        super().__init__(_broadcast_buffers_option(dict(options).get("broadcast_buffers")))
        self._syncing_gradients = True
        self._broadcast_buffers_next = True
        self._names_before_sharding: dict[int, str] = {}
        options = dict(options)
        unknown = sorted(set(options) - set(self.ACCEPTED_KEYS))
        if unknown:
            hint = " (sync_bn and the other DDP options do not apply to FSDP)" if set(unknown) & ddp_arguments(options).keys() else ""
            raise ConfigError(f"model_wrapper_cfg has unknown keys {unknown} for type='FSDP'{hint}; accepted: {', '.join(self.ACCEPTED_KEYS)}")
        if backend == "gloo" and torch_release() < FSDP_GLOO_FLOOR:
            raise ConfigError(
                f"model_wrapper_cfg.type='FSDP' on the gloo backend needs torch >= {'.'.join(map(str, FSDP_GLOO_FLOOR))}, "
                f"this is {torch.__version__}: FSDP2 on gloo fails on torch 2.5-2.6 and computes gradients 2x too large, "
                "silently, on 2.7-2.8 (pytorch issue 162338); upgrade torch, or use type='DDP'"
            )
        self.device = device
        self.world_size = world_size
        self.shard = self._names(options.get("shard"), "shard")
        self.checkpointed = self._names(options.get("activation_checkpointing"), "activation_checkpointing")
        self.reshard_after_forward = bool(options.get("reshard_after_forward", True))
        self.mixed_precision = self._mixed_precision(options.get("mixed_precision"))
        self.cpu_offload = bool(options.get("cpu_offload", False))
        if self.cpu_offload and device.type != "cuda":
            raise ConfigError("model_wrapper_cfg.cpu_offload=True needs a CUDA device: on the CPU the weights are already there; set it to False")

    @staticmethod
    def _names(value: Any, key: str) -> list[str] | None:
        if value is None:
            return None
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"model_wrapper_cfg.{key} must be a list of module class names, e.g. ['Bottleneck'], got {value!r}")
        return list(names)

    @staticmethod
    def _mixed_precision(value: Any) -> dict[str, torch.dtype] | None:
        if not value:
            return None
        if not isinstance(value, Mapping):
            raise ConfigError("model_wrapper_cfg.mixed_precision must be a dict like "
                              f"dict(param_dtype='bfloat16', reduce_dtype='float32'), got {value!r}")
        keys = ("param_dtype", "reduce_dtype", "output_dtype")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise ConfigError(f"model_wrapper_cfg.mixed_precision has unknown keys {unknown}; accepted: {', '.join(keys)}")
        policy = {}
        for key, dtype in value.items():
            if dtype is None:
                continue
            if dtype not in _DTYPES:
                raise ConfigError(f"model_wrapper_cfg.mixed_precision.{key}={dtype!r}; use one of {', '.join(sorted(_DTYPES))}")
            policy[key] = _DTYPES[dtype]
        return policy

    # wrapping --------------------------------------------------------------------

    def wrap(self, model: nn.Module) -> nn.Module:
        """Shard ``model`` in place (its parameters become DTensors) and return it; unchanged without a process group."""
        self.model = self.wrapped = model
        if not (torch_dist.is_available() and torch_dist.is_initialized()):
            # one process: nothing to shard over, but a misspelt block name is caught here, before a cluster job
            self._modules_named(model, self.shard or [], "shard")
            self._modules_named(model, self.checkpointed or [], "activation_checkpointing")
            return model
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

        self._names_before_sharding = {id(p): name for name, p in model.named_parameters()}
        block_names = self.shard if self.shard is not None else list(getattr(model, "_no_split_modules", None) or [])
        blocks = self._modules_named(model, block_names, "shard")
        if self.checkpointed:
            from torch.distributed._composable import checkpoint

            for module in self._modules_named(model, self.checkpointed, "activation_checkpointing"):
                checkpoint(module)
        mesh = init_device_mesh(self.device.type, (self.world_size,))
        options: dict[str, Any] = {
            "mesh": mesh,
            "reshard_after_forward": self.reshard_after_forward,
            "offload_policy": CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
        }
        if self.mixed_precision:
            for norm in [m for m in model.modules() if isinstance(m, _NORM_LAYERS) and m is not model]:
                fully_shard(norm, **{**options, "mp_policy": MixedPrecisionPolicy()})
            options["mp_policy"] = MixedPrecisionPolicy(**self.mixed_precision)
        for block in reversed(blocks):  # innermost first: a block nested in another is its own unit
            fully_shard(block, **options)
        fully_shard(model, **options)
        if self.buffers != "rank_local":
            self.share_buffers()  # as DDP does at the start: every rank begins from rank 0's buffers
        if self.buffers == "every_forward":
            model.register_forward_pre_hook(self._share_rank_zero_buffers)
        return model

    @staticmethod
    def _modules_named(model: nn.Module, names: list[str], key: str) -> list[nn.Module]:
        """The submodules (not the root) whose class is one of ``names``; a name matching none is a config error."""
        found = [m for m in model.modules() if m is not model and type(m).__name__ in names]
        classes = sorted({type(m).__name__ for m in model.modules()})
        missing = [n for n in names if n not in {type(m).__name__ for m in found}]
        if missing:
            close = sorted({c for n in missing for c in difflib.get_close_matches(n, classes, n=3)})
            hint = f"; did you mean {', '.join(close)}?" if close else f"; its classes are {', '.join(classes[:20])}"
            raise ConfigError(f"model_wrapper_cfg.{key} names {missing}, which {type(model).__name__} has no submodule of{hint}")
        return found

    def _share_rank_zero_buffers(self, module: nn.Module, args: Any) -> None:
        """``broadcast_buffers=True``, DDP's rule: before a forward with gradients that follows one that synchronised
        gradients (or none), not after an accumulation micro-step."""
        if not torch.is_grad_enabled():
            return
        if self._broadcast_buffers_next:
            self.share_buffers()
        self._broadcast_buffers_next = self._syncing_gradients

    # training ------------------------------------------------------------------

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Every parameter the optimizer holds must be a sharded one: an optimizer built before sharding trains nothing."""
        if not (torch_dist.is_available() and torch_dist.is_initialized()):
            return
        names = {**self._names_before_sharding, **{id(p): n for n, p in self.model.named_parameters()}}
        plain = [p for group in optimizer.param_groups for p in group["params"] if not _is_dtensor(p)]
        if plain:
            example = names.get(id(plain[0]), "a parameter the model does not own")
            raise ConfigError(
                f"under model_wrapper_cfg.type='FSDP' the optimizer holds {len(plain)} parameters that are not sharded DTensors "
                f"(e.g. {example}): it was built before the model was sharded, and would train nothing; build it after "
                "the Runner wraps the model (from runner.unwrapped_model.parameters())"
            )

    def check_save_points(self, accumulative_counts: int, hooks: Iterable[Any], iters_per_epoch: int | None) -> None:
        if accumulative_counts <= 1 or not self._sharded():
            return
        for hook in hooks:
            interval, by_epoch = getattr(hook, "interval", None), getattr(hook, "by_epoch", None)
            if type(hook).__name__ != "CheckpointHook" or not isinstance(interval, int) or interval <= 0:
                continue
            every = interval * iters_per_epoch if by_epoch and iters_per_epoch else interval
            if every % accumulative_counts:
                how = f"every {interval} epoch(s) of {iters_per_epoch} iterations" if by_epoch and iters_per_epoch else f"every {interval} iterations"
                raise ConfigError(
                    f"under model_wrapper_cfg.type='FSDP' default_hooks.checkpoint.interval saves {how}, which is not a multiple of "
                    f"optim_wrapper.accumulative_counts={accumulative_counts}: FSDP cannot save inside an accumulation window; "
                    "make the checkpoint interval (in iterations) a multiple of accumulative_counts"
                )

    @contextlib.contextmanager
    def gradient_sync(self, enabled: bool) -> Iterator[None]:
        """FSDP2 reads the flag in backward, after this context has closed: it stays set until the next call."""
        self._syncing_gradients = enabled
        if hasattr(self.model, "set_requires_gradient_sync"):
            self.model.set_requires_gradient_sync(enabled)
        yield

    def clip_grad_norm_(self, parameters: Iterable[torch.Tensor], **options: Any) -> torch.Tensor:
        norm = torch.nn.utils.clip_grad_norm_(list(parameters), **options)
        return norm.full_tensor() if _is_dtensor(norm) else norm

    # state -----------------------------------------------------------------------

    def _options(self, **overrides: Any) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, cpu_offload=True, **overrides)

    def _sharded(self) -> bool:
        return any(_is_dtensor(p) for p in self.model.parameters())

    def model_state_dict(self) -> dict[str, Any]:
        if not self._sharded():
            return super().model_state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.model, options=self._options())

    def optimizer_state_dict(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        if not self._sharded():
            return super().optimizer_state_dict(optimizer)
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(self.model, optimizer, options=self._options())

    def load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
        if not self._sharded():
            return super().load_optimizer_state_dict(optimizer, state)
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        optimizer.zero_grad(set_to_none=True)  # present gradients make the load restore nothing (pytorch issue 140898)
        set_optimizer_state_dict(self.model, optimizer, dict(state), options=self._options())


def load_model_weights(model: nn.Module, state: Mapping[str, Any], strict: bool = True) -> tuple[list[str], list[str]]:
    """``model.load_state_dict``, also for full (plain tensor) weights into a model FSDP sharded.

    Those go through ``set_model_state_dict(full_state_dict=True)``, which every rank
    calls with the same full weights, and each keeps its shard; ``state`` itself is not
    changed. Returns the missing and unexpected keys.
    """
    sharded = any(_is_dtensor(p) for p in model.parameters())
    if sharded and not any(_is_dtensor(v) for v in state.values()):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        options = StateDictOptions(full_state_dict=True, strict=strict)
        result = set_model_state_dict(model, dict(state), options=options)
    else:
        result = model.load_state_dict(dict(state), strict=strict)
    return list(result.missing_keys), list(result.unexpected_keys)


_BUFFER_POLICIES = {None: "evaluation", True: "every_forward", False: "rank_local"}


def _broadcast_buffers_option(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"model_wrapper_cfg.broadcast_buffers must be True, False or unset, got {value!r}")
    return value


def _ddp_buffer_options(options: dict[str, Any]) -> dict[str, Any]:
    """DDP's options without the broadcast of rank 0's buffers before every forward, unless the config sets it.

    That broadcast, DDP's default, is a blocking collective before each forward; on the
    2-process seg job it cost 10-20% of the speed (``tools/benchmark.py --mode
    scaling``). MMEngine and Detectron2 leave it out too; the strategy copies rank 0's
    buffers at the start and before each evaluation instead. torch 2.14 renamed the
    option ``forward_sync_buffers``, whose ``False`` still copies at the start (the old
    name's ``False`` does not, and now warns): the config's ``True`` is passed under the
    new name, which means the same; its ``False`` (buffers kept per rank) as given.
    """
    options = dict(options)
    new_name = "forward_sync_buffers" in ddp_parameters()
    if options.get("broadcast_buffers") is True and new_name:
        options["forward_sync_buffers"] = options.pop("broadcast_buffers")
    elif "broadcast_buffers" not in options and "forward_sync_buffers" not in options:
        options["forward_sync_buffers" if new_name else "broadcast_buffers"] = False
    return options


@torch.no_grad()
def _broadcast_from_rank_zero(tensors: list[torch.Tensor]) -> None:
    """Rank 0's values into ``tensors`` on every rank: one broadcast per device and dtype, in the same order everywhere.

    NCCL moves only CUDA tensors: a CPU buffer travels through the current CUDA device.
    """
    if not tensors or not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    through_cuda = torch_dist.get_backend() == "nccl"
    for device, dtype in dict.fromkeys((t.device, t.dtype) for t in tensors):
        group = [t for t in tensors if t.device == device and t.dtype == dtype]
        flat = torch._utils._flatten_dense_tensors(group)
        if through_cuda and flat.device.type != "cuda":
            flat = flat.to(torch.device("cuda", torch.cuda.current_device()))
        torch_dist.broadcast(flat, src=0)
        for tensor, synced in zip(group, torch._utils._unflatten_dense_tensors(flat, group)):
            tensor.copy_(synced)


def build_strategy(cfg: Mapping[str, Any] | None, world_size: int, device: torch.device, backend: str | None = None) -> Strategy:
    """The strategy ``model_wrapper_cfg`` names: FSDP for ``type='FSDP'``, else DDP with more than one process.

    Another ``type`` (an OpenMMLab wrapper) trains with DDP; ``config_warnings`` says so.
    ``backend`` defaults to the process group's (None without one).
    """
    options = dict(cfg or {})
    if backend is None and torch_dist.is_available() and torch_dist.is_initialized():
        backend = torch_dist.get_backend()
    if options.get("type") in FSDP_TYPES:
        return FSDPStrategy(options, device, backend, world_size)
    return DDPStrategy(options, device) if world_size > 1 else SingleProcessStrategy()
