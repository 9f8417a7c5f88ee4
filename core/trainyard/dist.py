"""Process groups: launch detection, rank helpers and the few collectives trainyard needs.

Every function works without a process group (one process): ranks are 0, world
size 1, collectives return their input.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as torch_dist

from trainyard.errors import ConfigError

__all__ = [
    "is_distributed",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "is_main_process",
    "barrier",
    "all_reduce_tensors",
    "all_gather_objects",
    "gather_objects",
    "broadcast_object",
    "is_collective_failure",
    "max_over_ranks_async",
    "init_distributed",
    "detect_launcher",
    "destroy",
]

LAUNCHERS = ("none", "pytorch", "slurm")


def is_distributed() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def get_rank() -> int:
    return torch_dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return torch_dist.get_world_size() if is_distributed() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        torch_dist.barrier()


def all_reduce_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sum each tensor over all ranks (in place where possible) and return them."""
    if not is_distributed():
        return tensors
    device = _collective_device()
    reduced = {}
    for name, tensor in tensors.items():
        moved = tensor.to(device)
        torch_dist.all_reduce(moved)
        reduced[name] = moved.to(tensor.device)
    return reduced


_cpu_group: Any = None


def max_over_ranks_async(value: int) -> Callable[[], int]:
    """Start taking the largest ``value`` of all ranks; the returned function waits for it.

    Runs on a CPU (gloo) group, so no GPU work is waited for, and in the background, so
    a caller that reads the result one step later pays almost nothing for the latency.
    """
    global _cpu_group
    if not is_distributed():
        return lambda: value
    if _cpu_group is None:
        _cpu_group = torch_dist.group.WORLD if torch_dist.get_backend() == "gloo" else torch_dist.new_group(backend="gloo")
    tensor = torch.tensor([value], dtype=torch.int64)
    work = torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX, group=_cpu_group, async_op=True)

    def result() -> int:
        work.wait()
        return int(tensor.item())

    return result


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (one element when not distributed)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * get_world_size()
    torch_dist.all_gather_object(gathered, obj)
    return gathered


def gather_objects(obj: Any, dst: int = 0) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank ``dst`` only (``None`` elsewhere).

    For large per-rank state that one rank writes: each of the others holds only its own.
    """
    if not is_distributed():
        return [obj]
    gathered: list[Any] | None = [None] * get_world_size() if get_rank() == dst else None
    torch_dist.gather_object(obj, gathered, dst=dst)
    return gathered


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not is_distributed():
        return obj
    holder = [obj]
    torch_dist.broadcast_object_list(holder, src=src)
    return holder[0]


_PROCESS_GROUP_MARKERS = ("gloo", "NCCL", "c10d", "ProcessGroup", "caused pair closure")
_TORCH_DISTRIBUTED_DIR = os.path.dirname(torch_dist.__file__) + os.sep


def is_collective_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the process group reporting a failed collective (a peer gone, a timeout).

    torch.distributed raises its ``DistError`` family, and gloo a plain ``RuntimeError``,
    from a collective's ``wait`` or from inside DDP's backward (then naming gloo's own
    source file). Anything else, a ``TimeoutError`` from a dataset for example, is the
    user's code failing.
    """
    if isinstance(exc, torch_dist.DistError):
        return True
    if type(exc) is not RuntimeError:
        return False
    innermost = exc.__traceback__
    while innermost is not None and innermost.tb_next is not None:
        innermost = innermost.tb_next
    raised_in_torch_distributed = innermost is not None and innermost.tb_frame.f_code.co_filename.startswith(_TORCH_DISTRIBUTED_DIR)
    return raised_in_torch_distributed or any(marker in str(exc) for marker in _PROCESS_GROUP_MARKERS)


def _collective_device() -> torch.device:
    if torch_dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def detect_launcher() -> str:
    """``'pytorch'`` under torchrun, ``'slurm'`` inside an ``srun`` step with several tasks, else ``'none'``."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return "pytorch"
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:
        return "slurm"
    return "none"


def init_distributed(launcher: str = "none", backend: str | None = None, timeout_s: float = 1800) -> None:
    """Join the process group the launcher describes; a no-op for ``'none'``.

    ``backend`` defaults to ``nccl`` with CUDA and ``gloo`` without. A collective
    that waits longer than ``timeout_s`` fails instead of hanging.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher {launcher!r}; use one of {', '.join(LAUNCHERS)}")
    if launcher == "none" or is_distributed():
        return
    if launcher == "slurm":
        _export_slurm_environment()
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"launcher '{launcher}' needs the environment variable {name}; start with torchrun or srun")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError(
            "env_cfg.dist_cfg.backend='nccl' needs CUDA, and this machine has none; use backend='gloo' "
            "(or None, which picks gloo on CPU machines)"
        )
    if backend == "nccl":
        torch.cuda.set_device(get_local_rank())
    timeout = datetime.timedelta(seconds=timeout_s)
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch_dist.init_process_group(
        backend=backend, store=_store_for_this_attempt(rank, world_size, timeout), rank=rank, world_size=world_size, timeout=timeout
    )


def _store_for_this_attempt(rank: int, world_size: int, timeout: datetime.timedelta) -> torch_dist.Store:
    """The rendezvous store, with keys kept apart for each torchrun restart.

    After ``torchrun --max-restarts`` restarts the workers, the agent's store still
    holds the addresses the dead workers published; without a prefix per attempt the
    new workers read them and fail to connect. A store that rank 0 hosts itself (c10d
    rendezvous with ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``, a fresh port each round)
    starts empty and takes no such prefix: there the nodes' restart counts differ once
    a lost node is started again (the survivor's is 1, the new node's 0).
    """
    agent_hosts_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = torch_dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world_size,
        is_master=not agent_hosts_store and rank == 0,
        timeout=timeout,
        multi_tenant=not agent_hosts_store,
    )
    if not agent_hosts_store:
        return torch_dist.PrefixStore("trainyard/", store)
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return torch_dist.PrefixStore(f"trainyard/attempt_{attempt}/", store)


def _export_slurm_environment() -> None:
    """Translate SLURM's variables into torch.distributed's."""
    os.environ.setdefault("RANK", os.environ["SLURM_PROCID"])
    os.environ.setdefault("WORLD_SIZE", os.environ["SLURM_NTASKS"])
    os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
    if "MASTER_ADDR" not in os.environ:
        import subprocess

        nodes = os.environ.get("SLURM_STEP_NODELIST", os.environ.get("SLURM_NODELIST", "localhost"))
        first = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=False)
        os.environ["MASTER_ADDR"] = (first.stdout.split() or ["localhost"])[0]
    os.environ.setdefault("MASTER_PORT", "29500")


def destroy(synchronize: bool = False) -> None:
    """Leave the process group, if any.

    ``synchronize`` (after a run every rank finished) waits for the other ranks first:
    a rank tearing gloo down while another still uses it can abort at exit. After a
    failure there is no waiting, since the other ranks may be gone.
    """
    global _cpu_group
    _cpu_group = None
    if is_distributed():
        if synchronize:
            _exit_barrier()
        torch_dist.destroy_process_group()


_exit_count = 0


def _exit_barrier() -> None:
    """Wait for every rank through the rendezvous store, not a gloo collective.

    A gloo ``barrier`` keeps the collectives still in flight when it starts; its worker
    thread frees them, and their tensors, after ``barrier`` has returned. At interpreter
    exit that thread can no longer take the GIL and the process aborts ("terminate called
    without an active exception"), failing a run that had finished. The store's
    round trip leaves no gloo work behind and lets those threads finish while it waits.
    The rank hosting the store (rank 0 without torchrun's agent) leaves last, so no
    rank loses the store before it has read that everyone arrived.
    """
    global _exit_count
    _exit_count += 1
    store = torch_dist.PrefixStore(f"trainyard/exit_{_exit_count}/", torch_dist.distributed_c10d._get_default_store())
    world_size = get_world_size()
    if store.add("arrived", 1) == world_size:
        store.set("all_arrived", "1")
    store.wait(["all_arrived"])
    if store.add("left", 1) == world_size:
        store.set("all_left", "1")
    if get_rank() == 0:
        store.wait(["all_left"])
