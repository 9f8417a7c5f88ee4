"""ProgressBarHook: a tqdm bar on a terminal, nothing in files and pipes or on other ranks, redrawn at most every so often."""

import io
import sys

import pytest
from conftest import tiny_cfg

from trainyard.runner import Runner

_SHORT_RUN = ("train_cfg.max_epochs=2", "val_cfg=None", "val_dataloader=None", "default_hooks.checkpoint=None")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _train(tmp_path, monkeypatch, stdout, *options):
    monkeypatch.setattr(sys, "stdout", stdout)
    runner = Runner.from_cfg(tiny_cfg(tmp_path, *_SHORT_RUN, *options))  # the console log handler writes to this stdout
    runner.train()
    return stdout.getvalue()


def test_a_terminal_shows_a_bar_with_iterations_epoch_and_loss_and_the_log_lines_above_it(tmp_path, monkeypatch):
    out = _train(tmp_path, monkeypatch, _Terminal(), "default_hooks.progress_bar.refresh_seconds=0")
    assert "train: 100%" in out and "12/12" in out and "epoch=2/2" in out and "loss=" in out
    assert "Epoch(train) [2][6/6]" in out  # the log lines still come, printed above the bar


def test_a_pipe_gets_the_log_lines_and_no_bar(tmp_path, monkeypatch):
    out = _train(tmp_path, monkeypatch, io.StringIO(), "default_hooks.progress_bar.refresh_seconds=0")
    assert "Epoch(train) [2][6/6]" in out and "it/s" not in out and "\r" not in out


def test_other_ranks_show_no_bar(tmp_path, monkeypatch):
    from trainyard.hooks.progress_bar import ProgressBarHook

    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert ProgressBarHook.wanted(0) and not ProgressBarHook.wanted(1)


@pytest.mark.parametrize("refresh_seconds, least, most", [(3600, 1, 1), (0, 12, 12)])
def test_the_bar_is_redrawn_at_most_every_refresh_seconds_and_at_the_end(tmp_path, monkeypatch, refresh_seconds, least, most):
    from tqdm import tqdm

    updates = []
    original = tqdm.update
    monkeypatch.setattr(tqdm, "update", lambda bar, n=1: updates.append(n) or original(bar, n))
    _train(tmp_path, monkeypatch, _Terminal(), f"default_hooks.progress_bar.refresh_seconds={refresh_seconds}")
    assert least <= len(updates) <= most and sum(updates) == 12
