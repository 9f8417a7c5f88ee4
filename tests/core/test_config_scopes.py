"""Configs shipped inside installed packages, named ``scope::path`` in ``_base_`` and on the command line."""

import subprocess
import sys

import pytest

from conftest import REPO, run_trainyard, trainyard_env
from trainyard import ConfigError
from trainyard.config import explain, load_config


def write(path, text):
    path.write_text(text)
    return path


def test_trainyard_base_config_from_an_installed_wheel(installed_wheels, tmp_path):
    config = write(tmp_path / "mine.py", "_base_ = ['trainyard::_base_/default_runtime.py']\nlog_level = 'DEBUG'\n")
    probe = run_trainyard("config", str(config), "--explain", env={"PYTHONPATH": str(installed_wheels)}, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert "default_hooks.checkpoint.interval = 1" in probe.stdout
    assert "# trainyard::_base_/default_runtime.py" in probe.stdout
    assert "log_level = 'DEBUG'" in probe.stdout and "# mine.py" in probe.stdout
    located = _python(installed_wheels, tmp_path, "import trainyard.config_scopes as s; print(s.config_root('trainyard'))")
    assert located == str(installed_wheels / "trainyard" / "configs")  # the wheel's copy, not the source tree


def test_plugin_scoped_base_from_an_installed_wheel_trains(installed_wheels, tmp_path):
    config = write(tmp_path / "experiment.py", "_base_ = ['acme_tabular::quick.py']\n"
                   "train_cfg = dict(max_iters=4, val_interval=4)\n"
                   "default_hooks = dict(checkpoint=dict(interval=4))\n")
    shown = run_trainyard("config", str(config), "--explain", env={"PYTHONPATH": str(installed_wheels)}, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "model.type = 'AcmeTabularRegressor'" in shown.stdout and "# acme_tabular::quick.py" in shown.stdout
    assert "train_cfg.max_iters = 4" in shown.stdout and "# experiment.py" in shown.stdout
    assert "# trainyard::_base_/default_runtime.py" in shown.stdout  # the plugin's own base, two levels up
    by_distribution = _python(installed_wheels, tmp_path, "from trainyard.config_scopes import resolve; print(resolve('acme-tabular::quick.py'))")
    assert by_distribution == str(installed_wheels / "acme_tabular" / "configs" / "quick.py")  # the distribution's name works too
    listed = run_trainyard("plugins", env={"PYTHONPATH": str(installed_wheels)}, cwd=tmp_path)
    assert "acme_tabular  [loaded]  acme-tabular 0.1.0" in listed.stdout
    assert "  configs (1): acme_tabular::quick.py" in listed.stdout
    run = run_trainyard("train", str(config), "--work-dir", str(tmp_path / "work"), env={"PYTHONPATH": str(installed_wheels)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "work" / "iter_4.pth").is_file()


def _python(site, cwd, code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                            env=trainyard_env({"PYTHONPATH": str(site)}), timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_shipped_config_loads_by_its_scoped_name_as_from_the_repository():
    assert load_config("trainyard::seg/unet.py").to_dict() == load_config(REPO / "configs/seg/unet.py").to_dict()


def test_scoped_bases_add_no_scope_keys_and_leave_mmengine_as_it_was(tmp_path):
    from mmengine.config import Config

    resolver = Config.__dict__["_get_cfg_path"]
    cfg = load_config(write(tmp_path / "c.py", "_base_ = ['trainyard::_base_/models/unet.py']\n"))
    assert cfg.model.type == "UNet" and "_scope_" not in cfg.model
    assert Config.__dict__["_get_cfg_path"] is resolver


def test_explain_names_shipped_files_by_scope_and_local_files_by_path(tmp_path):
    config = write(tmp_path / "c.py", "_base_ = ['trainyard::_base_/models/unet.py']\nnum_classes = 6\nmodel = dict(num_classes=num_classes)\n")
    sources = {key: source for key, _, source in explain(config)}
    assert sources["model.type"] == "trainyard::_base_/models/unet.py"
    assert sources["model.num_classes"] == str(config)


def test_misspelt_shipped_config_suggests_the_real_one(tmp_path):
    config = write(tmp_path / "c.py", "_base_ = ['trainyard::_base_/default_runtim.py']\n")
    with pytest.raises(ConfigError, match=r"does not exist in .*configs; did you mean trainyard::_base_/default_runtime.py\?"):
        load_config(config)


def test_unknown_scope_says_what_to_install(tmp_path):
    config = write(tmp_path / "c.py", "_base_ = ['acme_missing::tabular/base.py']\n")
    result = run_trainyard("config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"cannot find config 'acme_missing::tabular/base.py' (named in {config})" in result.stderr
    assert "no installed package, trainyard plugin or distribution is called 'acme_missing'" in result.stderr


def test_a_package_without_configs_is_named(tmp_path):
    config = write(tmp_path / "c.py", "_base_ = ['pluggy::x.py']\n")
    with pytest.raises(ConfigError, match=r"package 'pluggy' at .* ships no configs: it has no 'configs/' folder"):
        load_config(config)


def test_train_command_takes_a_scoped_config_name(tmp_path):
    result = run_trainyard("config", "trainyard::cls/small_cnn_generated.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "type='ImageClassifier'" in result.stdout
    missing = run_trainyard("train", "trainyard::cls/nope.py", cwd=tmp_path)
    assert missing.returncode == 2 and "config 'trainyard::cls/nope.py' does not exist" in missing.stderr
