"""A checkpoint is data, never code: no command that opens one runs or imports what its saved config says.

Each test gives a command a checkpoint whose saved config would create a file if it
were executed (or whose ``custom_imports`` names a module that creates a file when
imported), and checks that the file never appears.
"""

from __future__ import annotations

import sys

import pytest
import torch
from conftest import QUICK_RUNS, REPO, write_images

from trainyard import ConfigError, TrainyardError, cli
from trainyard.checkpoint import read_checkpoint
from trainyard.config import config_from_saved_text
from trainyard.inference import Predictor

SEG_CONFIG, SEG_OPTIONS = QUICK_RUNS["seg"]
IN_PROCESS = ["train_dataloader.num_workers=0", "train_dataloader.persistent_workers=False", "custom_hooks=[]"]


@pytest.fixture
def marker(tmp_path):
    """The file a checkpoint's config would create, were it ever run."""
    path = tmp_path / "code_ran"
    yield path
    assert not path.exists(), "a command ran code from a checkpoint's saved config"


def rewritten(source, destination, edit):
    state = read_checkpoint(source)
    state["meta"]["config"] = edit(state["meta"]["config"])
    torch.save(state, destination)  # still loads with weights_only=True: the config is only text
    return destination


@pytest.fixture
def code_checkpoint(quick_run, tmp_path, marker):
    """The seg quick run's checkpoint, its saved config extended by a line that creates ``marker``."""
    line = f"\n_x = __import__('os').system('touch {marker}')\n"
    return rewritten(quick_run("seg") / "iter_8.pth", tmp_path / "iter_8.pth", lambda text: text + line)


@pytest.fixture
def importing_checkpoint(quick_run, tmp_path, marker, monkeypatch):
    """A checkpoint whose saved config is plain data, but names a module that creates ``marker`` when imported."""
    package = tmp_path / "site"
    package.mkdir()
    (package / "creates_a_file_on_import.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(package))
    extra = "\ncustom_imports = dict(imports=['creates_a_file_on_import'])\n"
    return rewritten(quick_run("seg") / "iter_8.pth", tmp_path / "imports.pth", lambda text: text + extra)


def test_predictor_refuses_a_saved_config_that_is_code(code_checkpoint):
    with pytest.raises(ConfigError, match=r"is not plain data \(line \d+: _x = __import__"):
        Predictor.from_run(code_checkpoint, device="cpu")


def test_predict_and_export_refuse_it_with_one_line(code_checkpoint, tmp_path, capsys):
    write_images(tmp_path / "images")
    for args in (["predict", code_checkpoint, tmp_path / "images", "--out", tmp_path / "out"],
                 ["export", code_checkpoint, "--out", tmp_path / "export", "--input-size", "32", "32"]):
        assert cli.main([str(a) for a in args]) == 2
        err = capsys.readouterr().err
        assert "is not plain data" in err and "give its file too" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "predictions.jsonl").exists()


def test_the_config_file_the_user_gives_is_used_instead(code_checkpoint, tmp_path):
    predictor = Predictor.from_run(code_checkpoint, config=str(REPO / SEG_CONFIG), device="cpu")
    assert predictor.task_name == "segmentation"


def test_custom_imports_of_a_saved_config_are_never_imported(importing_checkpoint, tmp_path, capsys):
    write_images(tmp_path / "images")
    assert cli.main(["predict", str(importing_checkpoint), str(tmp_path / "images"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "creates_a_file_on_import" not in sys.modules


@pytest.mark.parametrize("command", ["load_from", "resume", "test", "val"])
def test_training_and_evaluation_never_read_a_checkpoints_config(command, code_checkpoint, importing_checkpoint, tmp_path):
    for checkpoint in (code_checkpoint, importing_checkpoint):
        work_dir = tmp_path / f"{command}-{checkpoint.stem}"
        options = [*SEG_OPTIONS, *IN_PROCESS, "train_cfg.max_iters=9"]
        if command == "load_from":
            args = ["train", SEG_CONFIG, "--load-from", str(checkpoint)]
        elif command == "resume":
            args = ["train", SEG_CONFIG, "--resume", str(checkpoint)]
        else:
            args = [command, SEG_CONFIG, str(checkpoint)]
        assert cli.main([*args, "--work-dir", str(work_dir), "--cfg-options", *options]) == 0
    assert "creates_a_file_on_import" not in sys.modules


def test_config_diff_and_runs_read_a_run_directorys_config_as_literals(quick_run, tmp_path, marker, capsys):
    run_dir = tmp_path / "work" / "20260101_000000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.py").write_text(f"model = dict(type='UNet')\n_x = __import__('os').system('touch {marker}')\n")
    (run_dir / "20260101_000000.log").write_text("")
    assert cli.main(["config", str(REPO / SEG_CONFIG), "--diff", str(run_dir)]) == 0
    assert cli.main(["runs", str(tmp_path / "work")]) == 0
    capsys.readouterr()


def test_a_saved_config_reads_back_as_the_config_that_was_saved(quick_run):
    for task in ("seg", "cls", "det"):
        meta = read_checkpoint(next(quick_run(task).glob("iter_*.pth")) if task != "cls" else next(quick_run(task).glob("epoch_*.pth")))["meta"]
        cfg = config_from_saved_text(meta["config"], task)
        assert cfg.model.type and cfg.pretty_text == config_from_saved_text(cfg.pretty_text, task).pretty_text


@pytest.mark.parametrize("text, offending", [
    ("import os\nmodel = dict(type='X')\n", "line 1: import os"),
    ("model = dict(type=getattr(object, 'x'))\n", "line 1: model = dict(type=getattr"),
    ("model = dict(type='X')\nprint('hi')\n", "line 2: print('hi')"),
    ("{'model': open('f')}\n", "model = open('f')"),
    ("model = dict(\n", "cannot be parsed"),
])
def test_anything_but_literal_assignments_is_refused_by_name(text, offending):
    with pytest.raises(ConfigError, match=f"saved in here .*{offending}".replace("(", r"\(").replace(")", r"\)")):
        config_from_saved_text(text, "here")


def test_the_pprint_form_of_a_config_reads_back():
    cfg = config_from_saved_text("{'model': {'type': 'X', 'depth': (1, 2)}, 'work_dir': None}", "here")
    assert cfg.model.depth == (1, 2) and cfg.work_dir is None


def test_infinity_in_a_saved_config_reads_back_as_a_float():
    cfg = config_from_saved_text("optim_wrapper = dict(clip_grad=dict(max_norm=inf))\n", "here")
    assert cfg.optim_wrapper.clip_grad.max_norm == float("inf")


def test_a_saved_config_nested_beyond_the_parsers_limits_is_one_clear_error(tmp_path, capsys):
    text = "x = " + "-" * 200_000 + "1\n"
    with pytest.raises(ConfigError, match="cannot be parsed"):
        config_from_saved_text(text, "here")
    run_dir = tmp_path / "work" / "20260101_000000"
    run_dir.mkdir(parents=True)
    (run_dir / "config.py").write_text(text)
    (run_dir / "20260101_000000.log").write_text("")
    assert cli.main(["runs", str(tmp_path / "work")]) == 0  # one bad run folder does not stop the table
    capsys.readouterr()


def test_a_checkpoint_whose_model_or_classes_are_not_dicts_is_refused(quick_run, tmp_path):
    for name, edit in (("model", lambda s: s["meta"].__setitem__("config", "model = [1, 2]\n")),
                       ("classes", lambda s: s["meta"].__setitem__("dataset_meta", "abc"))):
        state = read_checkpoint(quick_run("seg") / "iter_8.pth")
        edit(state)
        torch.save(state, tmp_path / f"{name}.pth")
        with pytest.raises(TrainyardError, match="not a dict; it was not written by trainyard"):
            Predictor.from_run(tmp_path / f"{name}.pth", device="cpu")
