"""Renamed arguments keep working for a while, so that configs written for an older release still run.

One name per idea across plugins (``score_thr``, ``checkpoint``, ``max_images``) means
some arguments were renamed; the old name still takes effect, and one log line names
the new one so the config can be updated before the old name goes.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["renamed_argument"]


def renamed_argument(component: str, old: str, new: str, value: Any) -> Any:
    """``value``, given under the old name ``old``; logs one warning line naming ``new``.

    Call it only when the old name was given (its default is ``None``), and use the
    result as the new argument's value::

        if score_threshold is not None:
            score_thr = renamed_argument("DetVisualizationHook", "score_threshold", "score_thr", score_threshold)
    """
    logging.getLogger("trainyard").warning(
        f"{component}: '{old}' is deprecated and will be removed, use '{new}' ({old}={value!r} is used as {new}={value!r})")
    return value
