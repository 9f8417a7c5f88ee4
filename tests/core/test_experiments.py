"""Comparing runs: the runs table, curves, config diffs, sweeps and MLflow, on runs trained here for real."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys

import pytest
from conftest import REPO, run_trainyard
from PIL import Image

from trainyard import cli
from trainyard.experiments.runs import find_runs, read_run

TINY = str(REPO / "tests/configs/tiny.py")
LOG_EVERY = ["default_hooks.logger.interval=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of the tiny config under one root: finished, stopped by SIGINT, failed on a NaN loss."""
    from test_interrupts import SLOW, interrupt, start

    root = tmp_path_factory.mktemp("experiments")
    finished = run_trainyard("train", TINY, "--work-dir", str(root / "finished"), "--cfg-options", *LOG_EVERY, "optim_wrapper.optimizer.lr=0.05")
    assert finished.returncode == 0, finished.stderr
    process = start([sys.executable, "-m", "trainyard", "train", TINY, "--work-dir", str(root / "interrupted"), "--cfg-options", *LOG_EVERY, SLOW],
                    root / "interrupted")
    code, _, _, _ = interrupt(process, signal.SIGINT, to_group=True)
    assert code == 130
    failed = run_trainyard("train", TINY, "--work-dir", str(root / "failed"), "--cfg-options", *LOG_EVERY,
                           "optim_wrapper.optimizer.lr=1e30", "default_hooks.nan_guard.interval=1")
    assert failed.returncode == 2 and "NaN" in failed.stderr
    return root


def test_runs_table_tells_finished_interrupted_and_failed_apart(runs, capsys):
    assert cli.main(["runs", str(runs), "--json"]) == 0
    table = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert table["finished"]["status"] == "finished" and table["finished"]["iterations"] == 18
    assert table["interrupted"]["status"] == "interrupted" and table["interrupted"]["detail"] == "SIGINT"
    assert 0 < table["interrupted"]["iterations"] < 18
    assert table["failed"]["status"] == "failed" and table["failed"]["detail"].startswith("NonFiniteError")
    assert table["failed"]["iterations"] >= 1
    finished = table["finished"]
    assert finished["metrics"]["val/accuracy"]["last"] == pytest.approx(read_last(runs / "finished", "val/accuracy"))
    assert finished["s_per_iter"] > 0 and finished["wall_s"] >= 0
    assert set(finished["differs"]) >= {"optim_wrapper.optimizer.lr", "default_hooks.nan_guard.interval"}
    assert cli.main(["runs", str(runs), "--filter", "status=finished"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("finished/") and "val/accuracy best (last)" in lines[0]


def read_last(work_dir, key):
    (run_dir,) = find_runs([work_dir])
    values = [json.loads(line)[key] for line in (run_dir / "scalars.jsonl").read_text().splitlines() if key in json.loads(line)]
    return values[-1]


def test_a_run_still_writing_shows_as_running(runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(runs / "interrupted", copy)
    (run_dir,) = find_runs([copy])
    log = run_dir / f"{run_dir.name}.log"
    log.write_text("\n".join(line for line in log.read_text().splitlines() if "run status:" not in line) + "\n")
    assert read_run(run_dir).status == "running"  # just written, no final status
    assert read_run(run_dir, now=log.stat().st_mtime + 3600).status == "stopped"  # silent for an hour: it died


def test_plot_draws_one_line_per_run_from_their_scalars(runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert cli.main(["plot", str(runs), "--keys", "loss,accuracy", "--out", str(out), "--smooth", "0.5"]) == 0
    printed = capsys.readouterr().out
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 1000 and picture.height > 300
    from trainyard.experiments.plot import plot_curves
    from trainyard.experiments.runs import differing_keys

    summaries = [read_run(run_dir) for run_dir in find_runs([runs])]
    differing_keys(summaries)
    drawn = plot_curves(summaries, ["loss", "accuracy"], tmp_path / "again.png")
    losses = {label: points for label, points in drawn["train/loss"].items()}
    assert len(losses) == 3  # one line per run
    expected = sorted(sum(1 for line in (s.run_dir / "scalars.jsonl").read_text().splitlines()
                          if isinstance(json.loads(line).get("train/loss"), float)) for s in summaries)  # NaN is logged as a string
    assert sorted(losses.values()) == expected and expected[-1] == 18
    assert list(drawn["val/accuracy"].values()) == [3]  # only the finished run reached a validation: three epochs
    assert "mean time per iteration" in printed and "over 18 iterations (finished)" in printed


def test_config_diff_of_two_runs_names_each_difference(runs, capsys):
    (finished,) = find_runs([runs / "finished"])
    (failed,) = find_runs([runs / "failed"])
    assert cli.main(["config", str(finished), "--diff", str(failed)]) == 0
    out = capsys.readouterr().out
    assert "- optim_wrapper.optimizer.lr = 0.05" in out and "+ optim_wrapper.optimizer.lr = 1e+30" in out
    assert "- default_hooks.nan_guard.interval = 50" in out and "+ default_hooks.nan_guard.interval = 1" in out
    assert "keys differ" in out.splitlines()[-1]


def test_config_diff_of_two_files_says_which_file_set_each_value(capsys):
    assert cli.main(["config", "configs/seg/unet.py", "--diff", "configs/seg/unet_voc12.py"]) == 0
    out = capsys.readouterr().out
    assert "- dataset_type = 'ShapesDataset'    # " in out and "configs/_base_/datasets/shapes.py" in out
    assert "+ dataset_type = 'VOCSegDataset'" in out and "configs/_base_/datasets/voc12.py" in out


def test_a_2x2_sweep_trains_four_runs_skips_them_again_and_ranks_them(tmp_path):
    command = ["sweep", TINY, "--grid", "optim_wrapper.optimizer.lr=[0.01,0.3]", "--grid", "train_dataloader.batch_size=[4,8]",
               "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=1", "--sort", "accuracy"]
    first = run_trainyard(*command)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr=0.01_batch_size=4", "lr=0.01_batch_size=8", "lr=0.3_batch_size=4", "lr=0.3_batch_size=8"]
    assert first.stdout.count(": finished") == 4
    again = run_trainyard(*command)
    assert again.returncode == 0 and again.stdout.count("finished earlier") == 4 and "(1/" not in again.stdout
    assert all(len(find_runs([p])) == 1 for p in tmp_path.iterdir())  # no run was started twice
    rows = [line for line in again.stdout.splitlines() if line.startswith("lr=")]
    scores = [float(row.split("finished")[1].split()[3]) for row in rows]
    assert len(rows) == 4 and scores == sorted(scores, reverse=True)


def test_a_misspelt_grid_key_stops_the_sweep_before_any_run_with_a_suggestion(tmp_path):
    result = run_trainyard("sweep", TINY, "--grid", "optim_wrapper.optimiser.lr=[0.1,0.2]", "--work-dir", str(tmp_path / "sweep"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the config has no 'optim_wrapper.optimiser'; did you mean 'optim_wrapper.optimizer'?" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "sweep").exists()


def checked(tmp_path, *grid_items, extra_options=()):
    from trainyard.experiments.sweep import check_plan, parse_grid, plan

    grid = parse_grid(grid_items)
    check_plan(TINY, grid, plan(grid, tmp_path), extra_options)


def test_every_combination_is_checked_before_the_first_run(tmp_path):
    from trainyard import ConfigError

    with pytest.raises(ConfigError, match=r"sweep combination lr=0.1_type=SDG: .*unknown type 'SDG'.*Did you mean 'SGD'"):
        checked(tmp_path, "optim_wrapper.optimizer.lr=[0.1,0.2]", "optim_wrapper.optimizer.type=[SGD,SDG]")


@pytest.mark.parametrize("item, message", [
    ("optim_wrapper.optimizer.lr=[0.1,abc]", "'abc' is text, but the config's value is 0.1; it takes a number"),
    ("optim_wrapper.optimizer=[0.1,0.2]", "0.1 would replace the dict at optim_wrapper.optimizer"),
    ("optim_wrapper.optimizer.lr=[0.1,0.10]", "would share the run directory"),
    ("model.dropout=[0.1,0.3]", "the config has no 'model.dropout'; it holds channels, num_classes, type; .* --cfg-options model.dropout=VALUE"),
    ("param_scheduler.7.end=[1,2]", "'param_scheduler' is a list of 2; '7' is not an index of it"),
])
def test_a_grid_value_or_key_the_config_cannot_take_is_refused_naming_it(tmp_path, item, message):
    from trainyard import ConfigError

    with pytest.raises(ConfigError, match=message):
        checked(tmp_path, item)


def test_a_key_set_with_cfg_options_can_be_swept_and_list_indices_reach_into_lists(tmp_path):
    checked(tmp_path, "model.dropout=[0.1,0.3]", "param_scheduler.0.end=[2,4]", extra_options=["model.dropout=0.0"])


def test_unquoted_words_in_a_grid_list_are_text_and_numbers_stay_numbers():
    from trainyard.experiments.sweep import parse_grid

    assert parse_grid(["optim_wrapper.optimizer.type=[SGD, AdamW]", "lr=[0.1,1e-3]", "flag=[true,None]"]) == {
        "optim_wrapper.optimizer.type": ["SGD", "AdamW"], "lr": [0.1, 0.001], "flag": [True, None]}


def test_mlflow_hook_logs_params_metrics_and_artifacts_and_a_resume_continues_the_run(tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="the 'mlflow' extra is not installed")
    subprocess.run("git init -q && git -c user.email=t@t -c user.name=t commit --allow-empty -qm start", shell=True, cwd=tmp_path, check=True)
    options = ["--cfg-options", *LOG_EVERY, "custom_hooks=[dict(type='MLflowLoggerHook', experiment_name='tiny')]",
               "default_hooks.checkpoint.save_best='accuracy'"]
    first = run_trainyard("train", TINY, "--work-dir", "work", *options, "train_cfg.max_epochs=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = run_trainyard("train", TINY, "--work-dir", "work", "--resume", *options, "train_cfg.max_epochs=3", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    store = tmp_path / "mlruns" / "mlflow.db"
    assert store.is_file() and not (tmp_path / "mlartifacts").exists()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])  # one run, continued
    assert run.info.status == "FINISHED"
    assert run.data.params["optim_wrapper.optimizer.lr"] == "0.1" and run.data.params["train_cfg.max_epochs"] == "2"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/accuracy")] == [6, 12, 18]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == list(range(1, 19))
    assert len(run.data.tags["git_commit"]) == 40 and run.data.tags["trainyard_version"]
    assert run.data.tags["best_checkpoint"].startswith(str(tmp_path / "work" / "best_accuracy_epoch_"))
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["best_checkpoint.txt"]
    with sqlite3.connect(store) as db:  # the store really is the local file, no server
        assert db.execute("select count(*) from runs").fetchone() == (1,)


def test_a_local_mlflow_store_that_cannot_work_is_refused_when_the_hook_is_built(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the 'mlflow' extra is not installed")
    from trainyard import ConfigError
    from trainyard.hooks.mlflow import MLflowLoggerHook

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"tracking_uri='sqlite:///.*afile/mlflow.db': .*afile is a file; leave tracking_uri unset"):
        MLflowLoggerHook(tracking_uri=f"sqlite:///{tmp_path}/afile/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "afile" / "store"))
    with pytest.raises(ConfigError, match=r"MLflowLoggerHook MLFLOW_TRACKING_URI='.*afile/store'"):
        MLflowLoggerHook()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    MLflowLoggerHook(tracking_uri=f"sqlite:///{tmp_path}/new/mlflow.db")  # a folder that can be made is fine
    MLflowLoggerHook(tracking_uri="http://localhost:1")  # a server is not contacted when the hook is built
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # and nothing is created then


def test_listing_runs_imports_no_torch(runs):
    """What keeps `trainyard runs` over a hundred run directories well under a second: no torch import."""
    probe = f"import sys; from trainyard.cli import main; code = main(['runs', {str(runs)!r}]); print(code, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split()[-2:] == ["0", "False"], result.stderr


FAKE_SRUN = '''#!{python}
"""srun for one task on this machine: records its arguments, then runs the command as SLURM task 0 of 1."""
import os, socket, subprocess, sys, uuid

arguments = sys.argv[1:]
with open(os.path.join(os.environ["SRUN_LOG"], uuid.uuid4().hex + ".args"), "w") as log:
    log.write("\\n".join(arguments) + "\\n")
start = 0
while arguments[start].startswith("-"):
    start += 2 if arguments[start] == "-p" else 1
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
task = dict(SLURM_PROCID="0", SLURM_NTASKS="1", SLURM_LOCALID="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
sys.exit({run})
'''
RUNS_THE_COMMAND = "subprocess.call(arguments[start:], env={**os.environ, **task})"
RUNS_NOTHING = "0"


def slurm_sweep(tmp_path, srun_does: str) -> subprocess.CompletedProcess:
    """``trainyard sweep --launcher slurm`` over two learning rates, with a fake ``srun`` first on the PATH."""
    import os

    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text(FAKE_SRUN.format(python=sys.executable, run=srun_does))
    fake.chmod(0o755)
    (tmp_path / "calls").mkdir()
    return run_trainyard("sweep", TINY, "--grid", "optim_wrapper.optimizer.lr=[0.01,0.3]", "--launcher", "slurm", "--partition", "gpu",
                         "--work-dir", str(tmp_path / "sweep"), "--cfg-options", "train_cfg.max_epochs=1",
                         env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "SRUN_LOG": str(tmp_path / "calls"),
                              "GPUS": "1", "GPUS_PER_NODE": "1"}, timeout=600)


def test_a_slurm_sweep_starts_one_srun_job_per_combination_and_each_trains(tmp_path):
    result = slurm_sweep(tmp_path, RUNS_THE_COMMAND)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = sorted(path.read_text().splitlines() for path in (tmp_path / "calls").iterdir())
    assert len(calls) == 2
    for call, lr in zip(calls, ("0.01", "0.3")):
        assert call[:7] == ["-p", "gpu", f"--job-name=sweep-lr={lr}", "--gres=gpu:1", "--ntasks=1", "--ntasks-per-node=1", "--cpus-per-task=5"]
        assert call[call.index("--launcher") + 1] == "slurm" and f"optim_wrapper.optimizer.lr={lr}" in call
        work_dir = tmp_path / "sweep" / f"lr={lr}"
        assert call[call.index("--work-dir") + 1] == str(work_dir)
        (run_dir,) = find_runs([work_dir])
        assert read_run(run_dir).status == "finished" and (work_dir / "epoch_1.pth").is_file()
    assert result.stdout.count(": finished") == 2


def test_a_sweep_whose_launcher_exits_0_without_training_reports_the_runs_failed(tmp_path):
    result = slurm_sweep(tmp_path, RUNS_NOTHING)
    assert result.returncode == 1
    assert len(list((tmp_path / "calls").iterdir())) == 2
    for lr in ("0.01", "0.3"):
        assert f"lr={lr}: exit status 0, but {tmp_path / 'sweep' / f'lr={lr}'} holds no finished run" in result.stdout
    assert "2 of 2 runs did not finish: lr=0.01, lr=0.3" in result.stderr
