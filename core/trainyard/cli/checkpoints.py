"""``trainyard convert-checkpoint``: a sharded (DCP) checkpoint directory as one weights file, offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_verbs"]


def add_verbs(commands: Any) -> None:
    convert = commands.add_parser(
        "convert-checkpoint", help="consolidate a sharded checkpoint directory (iter_N.dcp) into one .pth weights file",
        description="Reads only the model's tensors of a DCP checkpoint a trainyard run wrote, in this one process, and "
                    "writes {'meta', 'state_dict'} atomically: a file load_from, test, predict and export take.",
    )
    convert.add_argument("checkpoint", help="a trainyard DCP checkpoint directory, e.g. work_dirs/vit/iter_1000.dcp")
    convert.add_argument("--out", required=True, metavar="FILE.pth",
                         help="the weights file to write (outside the checkpoint directory; a name such as "
                              "iter_1000_consolidated.pth, since a run's max_keep_ckpts prunes epoch_N/iter_N names)")
    convert.add_argument("--force", action="store_true", help="replace --out if it exists")
    convert.set_defaults(handler=_convert)


def _convert(args: argparse.Namespace) -> int:
    from trainyard.checkpoint import atomic_save
    from trainyard.checkpoint_dcp import consolidate
    from trainyard.errors import CheckpointError

    source, out = Path(args.checkpoint), Path(args.out)
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a directory: convert-checkpoint takes a sharded (DCP) checkpoint directory")
    if out.resolve() == source.resolve() or out.is_dir():
        raise CheckpointError(f"--out {out} is a directory; name the .pth file to write")
    if source.resolve() in out.resolve().parents:
        raise CheckpointError(f"--out {out} is inside the checkpoint directory {source}; write the .pth file outside it")
    if out.exists() and not getattr(args, "force", False):
        raise CheckpointError(f"--out {out} exists already; name another file, or pass --force to replace it")
    state = consolidate(source)
    atomic_save(state, out)
    tensors = state["state_dict"].values()
    size = sum(t.numel() * t.element_size() for t in tensors)
    print(f"wrote {out}: {len(state['state_dict'])} tensors ({size / 2**20:.1f} MiB) of {source.name} "
          f"(iteration {state['meta'].get('iter')}), read in {state['meta']['consolidate_seconds']:.2f} s")
    return 0
