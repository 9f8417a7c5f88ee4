"""How a training run ended, as the last line of its log file: what ``trainyard runs`` reads.

Kept apart from :mod:`trainyard.logging` (which needs torch), so that reading a
hundred runs' logs imports no torch.
"""

from __future__ import annotations

import logging

__all__ = ["RUN_STATUS", "log_run_status"]

RUN_STATUS = "run status:"
"""Begins the last line a training run writes to its log file: ``run status: finished|interrupted|failed ...``.

``trainyard runs`` reads it; the console does not show it (the command line reports
the end of a run its own way)."""


def log_run_status(logger: logging.Logger, status: str, iteration: int, detail: str = "") -> None:
    """The run's final state, in its log file only: ``run status: failed at iteration 3: NonFiniteError: ...``."""
    where = "at" if status == "failed" else "after"
    logger.info(f"{RUN_STATUS} {status} {where} iteration {iteration}{': ' + detail if detail else ''}", extra={"file_only": True})
