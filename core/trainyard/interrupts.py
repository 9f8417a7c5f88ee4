"""Stopping a run cleanly on Ctrl-C (SIGINT) and on SIGTERM, which SLURM and Kubernetes send before preemption.

The first signal asks the train loop to stop at the next iteration boundary; the
run then saves a checkpoint (``CheckpointHook(save_on_interrupt=True)``), ends its
hooks and raises :class:`TrainingInterrupted`, which the command line turns into
the resume command and exit status 130 (SIGINT) or 143 (SIGTERM). A second signal
stops at once. Data-loader workers ignore both signals: the main process ends them.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Callable

__all__ = ["TrainingInterrupted", "StopOnSignals", "EXIT_CODES", "ignore_stop_signals", "log_stop_request"]

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
REPEAT_GRACE_S = 1.0
"""A second signal sooner than this after the first is the same request (a launcher forwarding it)."""


class TrainingInterrupted(Exception):
    """Training stopped early on a signal, after saving where it was."""

    def __init__(self, signal_number: int, iteration: int, checkpoint: Path | None, work_dir: Path) -> None:
        self.signal_name = signal.Signals(signal_number).name
        self.exit_code = EXIT_CODES[signal_number]
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.work_dir = work_dir
        """The work dir the run used (from ``--work-dir`` or the config): where ``--resume`` must look."""
        saved = f"; last checkpoint {checkpoint}" if checkpoint else "; no checkpoint was saved yet"
        super().__init__(f"stopped by {self.signal_name} after iteration {iteration}{saved}")


class _StopNow(KeyboardInterrupt):
    """The second signal: leave at once, whatever is running."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.exit_code = EXIT_CODES[signal_number]


class StopOnSignals:
    """While active (``with``), SIGINT and SIGTERM call ``request_stop(signal_number)`` once, then stop at once.

    Signal handlers can only be installed in the main thread; elsewhere this does nothing.
    A handler runs between two bytecodes of whatever the main thread was doing, a log
    write included, so it only records the signal (``request_stop`` must only set a flag)
    and never logs: a reentrant write would lose the message and print "--- Logging error ---".
    The loop announces the stop with :func:`log_stop_request` when it acts on it.
    """

    def __init__(self, request_stop: Callable[[int], None]) -> None:
        self.request_stop = request_stop
        self.received: int | None = None
        self._received_at = 0.0
        self._previous: dict[int, Any] = {}

    def _handle(self, signal_number: int, frame: FrameType | None) -> None:
        if self.received is not None:
            if time.monotonic() - self._received_at < REPEAT_GRACE_S:
                return  # torchrun forwards the terminal's Ctrl-C to its workers: the same request
            raise _StopNow(signal_number)
        self.received, self._received_at = signal_number, time.monotonic()
        self.request_stop(signal_number)

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signal_number in EXIT_CODES:
                self._previous[signal_number] = signal.signal(signal_number, self._handle)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()


def log_stop_request(logger: Any, signal_number: int, iteration: int) -> None:
    """Announce the stop a signal asked for; called by the loop at an iteration boundary, outside the handler."""
    name = signal.Signals(signal_number).name
    logger.warning(f"{name} received: stopping after iteration {iteration} and saving a checkpoint (send it again to stop at once)")


def ignore_stop_signals() -> None:
    """For data-loader workers: a terminal's Ctrl-C reaches them too, but the main process decides."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
