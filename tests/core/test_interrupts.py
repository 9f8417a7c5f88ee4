"""Ctrl-C and SIGTERM: stop at an iteration boundary, save, say how to resume, resume exactly."""

import io
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (REPO, RESUME_OPTIONS, assert_same_weights, final_weights, free_port, run_trainyard, tiny_cfg, train_cli,
                      trainyard_env)

from trainyard.checkpoint import read_checkpoint

SLOW = "custom_hooks=[dict(type='SleepHook', seconds=0.15)]"


def start(command, work_dir):
    """Start ``command`` in a session of its own (a terminal's process group) and wait until it trains."""
    process = subprocess.Popen(command, cwd=REPO, env=trainyard_env({"PORT": str(free_port())}), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in work_dir.glob("*/scalars.jsonl")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    return process


def interrupt(process, signal_number, to_group):
    sent = time.monotonic()
    if to_group:
        os.killpg(process.pid, signal_number)  # what a terminal's Ctrl-C does
    else:
        process.send_signal(signal_number)
    out, err = process.communicate(timeout=120)
    return process.returncode, time.monotonic() - sent, out, err


def train_command(work_dir, *extra):
    return [sys.executable, "-m", "trainyard", "train", "tests/configs/tiny.py", "--work-dir", str(work_dir),
            "--cfg-options", *RESUME_OPTIONS, SLOW, *extra]


@pytest.mark.parametrize("signal_number, exit_code, to_group, workers", [
    (signal.SIGINT, 130, True, 0), (signal.SIGINT, 130, True, 2), (signal.SIGINT, 130, False, 2),
    (signal.SIGTERM, 143, False, 0), (signal.SIGTERM, 143, False, 2),
])
def test_a_signal_stops_at_an_iteration_saves_and_resumes_to_identical_weights(uninterrupted, tmp_path, signal_number, exit_code, to_group, workers):
    process = start(train_command(tmp_path, f"train_dataloader.num_workers={workers}"), tmp_path)
    code, seconds, out, err = interrupt(process, signal_number, to_group)
    print(f"{signal.Signals(signal_number).name} to the {'group' if to_group else 'main process'} with {workers} workers: exit after {seconds:.2f} s")
    assert code == exit_code, err
    assert "Traceback" not in err and "Continue with:" in err and "--resume" in err
    stopped_at = int(err.split("after iteration ")[1].split(";")[0])
    assert (tmp_path / "last_checkpoint").read_text().endswith(f"iter_{stopped_at}.pth")
    resumed = train_cli(tmp_path, SLOW, "resume=auto", f"train_dataloader.num_workers={workers}")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(final_weights(uninterrupted), final_weights(tmp_path))


def test_the_printed_continue_command_resumes_in_the_configs_work_dir_with_the_same_options(tmp_path):
    """Run literally, the command printed on SIGINT ends with an uninterrupted run's weights (AMP, seed, work dir kept)."""
    work_dir = tmp_path / "work"  # set by the config file, not on the command line
    config = tmp_path / "experiment.py"
    config.write_text(f"_base_ = [{str(REPO / 'tests' / 'configs' / 'tiny.py')!r}]\nwork_dir = {str(work_dir)!r}\n")
    options = ["--seed", "5", "--amp", "--deterministic"]
    reference = run_trainyard("train", str(config), *options, "--work-dir", str(tmp_path / "reference"), "--cfg-options", *RESUME_OPTIONS)
    assert reference.returncode == 0, reference.stderr
    process = start([sys.executable, "-m", "trainyard", "train", str(config), *options, "--cfg-options", *RESUME_OPTIONS, SLOW], work_dir)
    code, _, _, err = interrupt(process, signal.SIGINT, to_group=True)
    assert code == 130, err
    printed = err.split("Continue with:\n")[1].strip()
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # where pip put the trainyard command
    resumed = subprocess.run(shlex.split(printed), cwd=tmp_path, env=trainyard_env({"PATH": path}), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {work_dir}" in resumed.stdout
    assert_same_weights(final_weights(tmp_path / "reference"), final_weights(work_dir), printed)


def dist_command(work_dir):
    return ["bash", "tools/dist_train.sh", "tests/configs/tiny.py", "2", "--work-dir", str(work_dir), "--cfg-options", *RESUME_OPTIONS, SLOW]


def run_dist(command):
    return subprocess.run(command, cwd=REPO, env=trainyard_env({"PORT": str(free_port())}), capture_output=True, text=True, timeout=300)


def test_ctrl_c_stops_two_torchrun_processes_together_and_the_run_resumes_to_identical_weights(tmp_path):
    reference = run_dist(dist_command(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr[-3000:]
    command = dist_command(tmp_path / "work")
    process = start(command, tmp_path / "work")
    code, seconds, out, err = interrupt(process, signal.SIGINT, to_group=True)
    print(f"SIGINT with 2 processes: exit after {seconds:.2f} s")
    assert code != 0
    assert err.count("Continue with:") == 1, err
    stopped_at = int(err.split("after iteration ")[1].split(";")[0])
    assert (tmp_path / "work" / "last_checkpoint").read_text().endswith(f"iter_{stopped_at}.pth")
    resumed = run_dist(command + ["resume=auto"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"iteration {stopped_at}" in resumed.stdout
    final = "iter_9.pth"  # 2 ranks x batch 4: 3 iterations per epoch
    assert_same_weights(read_checkpoint(tmp_path / "reference" / final)["state_dict"], read_checkpoint(tmp_path / "work" / final)["state_dict"])


class SignalWhileWriting(io.StringIO):
    """A log stream that raises SIGINT in this process while it writes the first training log line.

    It refuses a write that re-enters it, as Python's buffered streams do ("reentrant
    call inside <_io.BufferedWriter name='<stdout>'>"); logging then prints
    "--- Logging error ---" and a traceback, and the message is lost.
    """

    def __init__(self) -> None:
        super().__init__()
        self._writing = False
        self._signalled = False

    def write(self, text: str) -> int:
        if self._writing:
            raise RuntimeError("reentrant call inside SignalWhileWriting.write")
        self._writing = True
        try:
            if "Epoch(train)" in text and not self._signalled:
                self._signalled = True
                signal.raise_signal(signal.SIGINT)
            return super().write(text)
        finally:
            self._writing = False


def test_a_signal_during_a_log_write_is_logged_once_after_the_handler_returns(tmp_path, capsys):
    from trainyard.interrupts import TrainingInterrupted
    from trainyard.runner import Runner

    runner = Runner.from_cfg(tiny_cfg(tmp_path, "default_hooks.logger.interval=1", "val_cfg=None", "val_dataloader=None"))
    stream = SignalWhileWriting()
    handler = logging.StreamHandler(stream)
    runner.logger.addHandler(handler)
    try:
        with pytest.raises(TrainingInterrupted):
            runner.train()
    finally:
        runner.logger.removeHandler(handler)
    assert stream.getvalue().count("SIGINT received") == 1, stream.getvalue()
    assert "Logging error" not in capsys.readouterr().err
