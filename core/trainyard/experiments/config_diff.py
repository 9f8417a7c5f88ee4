"""``trainyard config A --diff B``: the keys whose values differ between two configs (files or runs' saved configs), and where each was set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainyard.errors import TrainyardError

__all__ = ["config_rows", "config_diff"]


def config_rows(source: str, cfg_options: Sequence[str] = ()) -> tuple[dict[str, tuple[Any, str]], str]:
    """``{key: (value, file that set it)}`` of a config file, or of a run directory's saved config (read as literals)."""
    from trainyard.config import explain
    from trainyard.experiments.runs import read_config

    path = Path(source)
    if path.is_dir():
        saved = path / "config.py"
        if not saved.is_file():
            runs = sorted(path.glob("*/config.py"))
            if not runs:
                raise TrainyardError(f"{path} is neither a run directory nor a work dir holding one (no config.py)")
            saved = runs[-1]  # a work dir: its newest run
        return {key: (value, str(saved)) for key, value in read_config(saved).items()}, str(saved)
    return {key: (value, where) for key, value, where in explain(path, cfg_options)}, str(path)


def config_diff(ours_source: str, theirs_source: str, cfg_options: Sequence[str] = ()) -> str:
    """A unified-diff-like listing: ``- key = value  # file`` for ours, ``+`` for theirs, then how many keys differ."""
    ours, our_name = config_rows(ours_source, cfg_options)
    theirs, their_name = config_rows(theirs_source)
    keys = [k for k in sorted(set(ours) | set(theirs)) if repr(ours.get(k, (None,))[0]) != repr(theirs.get(k, (None,))[0])]
    lines = [f"--- {our_name}", f"+++ {their_name}"]
    for key in keys:
        for sign, rows in (("-", ours), ("+", theirs)):
            value, where = rows.get(key, ("(not set)", ""))
            lines.append(f"{sign} {key} = {value!r}" + (f"    # {where}" if where else ""))
    lines.append(f"{len(keys)} keys differ")
    return "\n".join(lines)
