"""The command line as a user meets it: a run end to end, and one clear message per mistake."""

import json
import re
import shlex
import shutil

import pytest
from conftest import REPO, run_trainyard

from trainyard.cli import build_parser
from trainyard.cli.train import resume_command


def test_tiny_config_trains_validates_and_tests(tmp_path):
    train = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--seed", "3")
    assert train.returncode == 0, train.stderr
    assert "Val (epoch 3)" in train.stdout and "training finished" in train.stdout
    assert (tmp_path / "epoch_3.pth").is_file()
    metrics_file = tmp_path / "metrics.json"
    runs_before = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    test = run_trainyard("test", "tests/configs/tiny.py", str(tmp_path / "epoch_3.pth"), "--work-dir", str(tmp_path), "--out", str(metrics_file))
    assert test.returncode == 0, test.stderr
    assert 0.0 <= json.loads(metrics_file.read_text())["accuracy"] <= 1.0
    (evaluation,) = sorted(set(p.name for p in tmp_path.iterdir() if p.is_dir()) - set(runs_before))
    assert evaluation.endswith("_test")  # a test is not a training run: its log and pictures go to <timestamp>_test
    assert not (tmp_path / evaluation / "config.py").exists() and (tmp_path / evaluation / f"{evaluation}.log").is_file()
    assert "Test (iter 18)" in test.stdout  # the evaluated checkpoint's iteration, not 0


def test_a_config_that_fails_to_build_leaves_no_run_directory(tmp_path):
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path / "work"), "--cfg-options", "train_dataloader.batch_size=0")
    assert result.returncode == 2
    assert not (tmp_path / "work").exists()


def test_a_missing_config_is_reported_before_torch_is_imported():
    import subprocess
    import sys

    probe = "import sys; from trainyard.cli import main; code = main(['train', 'missing.py']); print(code, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False"], result.stderr
    assert "config file not found: missing.py" in result.stderr


def assert_one_clear_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("trainyard ")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("custom_hooks=[dict(type='EMAHok')]", ["HOOKS: unknown type 'EMAHok'", "custom_hooks[0]", "Did you mean 'EMAHook'"]),
        ("default_hooks.logger.intervall=5", ["cannot build 'LoggerHook'", "default_hooks.logger", "'intervall' (did you mean 'interval'?)", "Accepted arguments: interval, log_metric_by_epoch"]),
        ("train_cfg.type=EpochLoop", ["LOOPS: unknown type 'EpochLoop'", "train_cfg"]),
        ("model.type=NoLossNet", ["NoLossNet(batch, mode='loss') returned no loss", "['accuracy']"]),
        ("trian_cfg=dict(max_epochs=1)", ["unknown top-level key 'trian_cfg': did you mean 'train_cfg'?"]),
        ("model.num_clases=3", ["cannot build 'ToyNet'", "'num_clases' (did you mean 'num_classes'?)"]),
    ],
    ids=["unknown-hook", "bad-hook-argument", "unknown-loop", "model-without-loss", "top-level-typo", "bad-model-argument"],
)
def test_bad_input_gives_one_clear_message(tmp_path, override, fragments):
    result = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options", override)
    assert_one_clear_error(result, *fragments)


def test_config_syntax_error_names_file_and_line(tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("model = dict(type='ToyNet'\ntrain_cfg = 1\n")
    result = run_trainyard("config", str(config))
    assert_one_clear_error(result, f"{config}, line 1")


def test_config_command_prints_resolved_config_and_explains(tmp_path):
    result = run_trainyard("config", "tests/configs/tiny.py", "--cfg-options", "train_cfg.max_epochs=7")
    assert result.returncode == 0, result.stderr
    assert "max_epochs=7" in result.stdout
    explained = run_trainyard("config", "tests/configs/tiny.py", "--explain", "--cfg-options", "train_cfg.max_epochs=7")
    lines = explained.stdout.splitlines()
    assert any(line.startswith("train_cfg.max_epochs = 7") and line.endswith("# --cfg-options") for line in lines)
    assert any(line.startswith("default_hooks.timer.type = 'IterTimerHook'") and line.endswith("configs/_base_/default_runtime.py") for line in lines)
    assert any(line.startswith("default_hooks.logger.interval = 2") and line.endswith("tests/configs/tiny.py") for line in lines)


def test_overwrite_replaces_an_earlier_run_and_says_what_it_removed(tmp_path):
    first = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=2")
    assert first.returncode == 0, first.stderr
    second = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--overwrite", "--cfg-options", "train_cfg.max_epochs=1")
    assert second.returncode == 0, second.stderr
    assert f"--overwrite: removed {tmp_path / 'epoch_2.pth'} of an earlier run" in second.stdout
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pth")) == ["epoch_1.pth"]


def test_overwrite_loads_weights_from_a_file_of_the_earlier_run_before_removing_it(tmp_path):
    first = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=1")
    assert first.returncode == 0, first.stderr
    weights = tmp_path / "epoch_1.pth"
    second = run_trainyard("train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--overwrite", "--load-from", str(weights),
                           "--cfg-options", "train_cfg.max_epochs=1")
    assert second.returncode == 0, second.stderr
    loaded = second.stdout.index(f"loaded weights from {weights}")
    assert loaded < second.stdout.index(f"--overwrite: removed {weights} of an earlier run")


def test_the_continue_command_keeps_the_options_that_shape_training(tmp_path):
    """What an interrupted run prints parses back to the same run: seed, AMP, determinism, launcher, overrides, work dir."""
    given = build_parser().parse_args([
        "train", "cfg.py", "--seed", "5", "--amp", "--auto-scale-lr", "--deterministic", "--launcher", "pytorch", "--load-from", "w.pth",
        "--overwrite", "--resume", "other/iter_4.pth", "--cfg-options", "a=1", "b=[1, 2]",
    ])
    words = shlex.split(resume_command(given, tmp_path / "work"))
    assert words[:2] == ["trainyard", "train"]
    again = build_parser().parse_args(words[1:])
    assert (again.config, again.work_dir, again.seed, again.amp, again.deterministic, again.launcher, again.cfg_options) == (
        "cfg.py", str(tmp_path / "work"), 5, True, True, "pytorch", ["a=1", "b=[1, 2]"])
    assert again.auto_scale_lr
    assert (again.resume, again.load_from, again.overwrite) == ("auto", "w.pth", False)  # its own newest checkpoint wins
    before_any_save = build_parser().parse_args(shlex.split(resume_command(given, tmp_path / "work", saved=False))[1:])
    assert before_any_save.resume == "other/iter_4.pth"  # nothing saved yet: start again from where it started


def test_training_with_persistent_data_workers_exits_when_done(tmp_path):
    """Workers ignore SIGTERM, so the exit handler's terminate-and-join used to wait on them forever."""
    result = run_trainyard(
        "train", "tests/configs/tiny.py", "--work-dir", str(tmp_path), "--cfg-options", "train_cfg.max_epochs=1",
        "train_dataloader.num_workers=1", "train_dataloader.persistent_workers=True",
        "val_dataloader.num_workers=1", "val_dataloader.persistent_workers=True", timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "epoch_1.pth").is_file()


def test_test_and_val_take_a_work_dir_or_run_directory_alone(tmp_path, quick_run):
    """As predict and export do: the run's best checkpoint and the config saved in it, read as data; no config file."""
    work_dir = tmp_path / "work"
    shutil.copytree(quick_run("cls"), work_dir)
    test = run_trainyard("test", str(work_dir), "--out", str(tmp_path / "test.json"), cwd=tmp_path)
    assert test.returncode == 0, test.stderr
    assert "accuracy_top1" in json.loads((tmp_path / "test.json").read_text())
    assert [p for p in work_dir.iterdir() if p.name.endswith("_test")], "the evaluation's log goes beside the run"
    (run_dir,) = [p for p in work_dir.iterdir() if (p / "config.py").is_file()]
    val = run_trainyard("val", str(run_dir), "--cfg-options", "val_dataloader.batch_size=3", cwd=tmp_path)
    assert val.returncode == 0, val.stderr
    assert "Val (" in val.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["tests/configs/tiny.py"], "after the config tests/configs/tiny.py, give the checkpoint"),
    (["no_such_run"], "no_such_run does not exist"),
    (["no_such_run", "extra.pth"], "unexpected argument extra.pth: test takes CONFIG CHECKPOINT, or a checkpoint or work dir alone"),
], ids=["config-without-checkpoint", "missing-run", "run-and-checkpoint"])
def test_test_with_a_wrong_source_gives_one_clear_message(args, fragment):
    assert_one_clear_error(run_trainyard("test", *args), fragment)


def test_each_tools_script_is_the_trainyard_verb_it_names_and_the_docs_list_them(capsys):
    scripts = {path.name: re.search(r'run_tool\("([\w-]+)"\)', path.read_text()) for path in (REPO / "tools").glob("*.py")}
    named = {name: match.group(1) for name, match in scripts.items() if match}
    assert {"train.py", "test.py", "val.py", "predict.py", "export.py"} <= set(named)
    getting_started = (REPO / "docs" / "getting_started.md").read_text()
    for name, verb in named.items():
        with pytest.raises(SystemExit) as help_shown:
            build_parser().parse_args([verb, "--help"])  # an unknown verb exits 2
        assert help_shown.value.code == 0, f"tools/{name}: no verb {verb!r}"
        assert f"`tools/{name}` is `trainyard {verb}`" in getting_started


@pytest.mark.parametrize("verb", ["test", "val"])
def test_the_work_dir_help_of_an_evaluation_says_what_goes_there(verb, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([verb, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"where the evaluation's log and pictures go, in a <timestamp>_{verb} folder" in help_text
    assert "checkpoints" not in help_text.split("--work-dir WORK_DIR", 2)[-1].split("--launcher")[0]


def test_torchruns_environment_outranks_a_dumped_configs_launcher_none(tmp_path, monkeypatch):
    from trainyard.cli.arguments import config_from_arguments

    config = tmp_path / "dumped.py"
    config.write_text(f"_base_ = [{str(REPO / 'tests/configs/tiny.py')!r}]\nlauncher = 'none'\n")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = build_parser().parse_args(["train", str(config), "--work-dir", str(tmp_path / "w")])
    assert config_from_arguments(args, "train").launcher == "pytorch"
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert config_from_arguments(args, "train").launcher == "none"
