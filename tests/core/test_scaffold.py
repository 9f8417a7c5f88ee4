"""``trainyard new-plugin``: each generated project installs, passes its own tests and trains."""

import json
import subprocess
import sys

import pytest

from conftest import new_plugin, pip_install_target, run_trainyard, trainyard_env

SHORT_RUN = ["train_cfg.max_iters=3", "train_cfg.val_interval=3", "default_hooks.checkpoint.interval=3",
             "train_dataloader.dataset.length=12", "val_dataloader.dataset.length=4"]


@pytest.mark.parametrize("task", ["cls", "seg", "det", "blank"])
def test_generated_plugin_installs_passes_its_tests_and_trains(task, tmp_path):
    project = new_plugin(f"acme-{task}", task, tmp_path)
    package = f"acme_{task}"
    assert (project / package / "configs" / "quick.py").read_text().count("trainyard::_base_/default_runtime.py") == 1
    site = tmp_path / "site"
    pip_install_target(site, project)
    assert (site / package / "configs" / "quick.py").is_file()  # the config ships in the wheel

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                           capture_output=True, text=True, env=trainyard_env({"PYTHONPATH": str(site)}), timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "6 passed" in tests.stdout

    run = run_trainyard("train", f"{package}::quick.py", "--cfg-options", *SHORT_RUN, env={"PYTHONPATH": str(site)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    work_dir = tmp_path / "work_dirs" / "quick"  # named after the config file, without its scope
    assert (work_dir / "iter_3.pth").is_file()
    (scalars,) = work_dir.glob("*/scalars.jsonl")
    validated = [json.loads(line) for line in scalars.read_text().splitlines() if '"val/' in line]
    assert validated and all(isinstance(value, float) for key, value in validated[-1].items() if key.startswith("val/"))


def test_generated_names_follow_the_project_name(tmp_path):
    project = new_plugin("acme-signals", "blank", tmp_path)
    pyproject = (project / "pyproject.toml").read_text()
    assert 'name = "acme-signals"' in pyproject
    assert 'acme_signals = "acme_signals.plugin"' in pyproject
    plugin = (project / "acme_signals" / "plugin.py").read_text()
    assert 'register_lazy("AcmeSignalsRegressor", "acme_signals.models:AcmeSignalsRegressor")' in plugin
    assert "{{" not in "".join(path.read_text() for path in project.rglob("*") if path.is_file())


def test_new_plugin_never_writes_into_a_folder_that_holds_files(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "notes.txt").write_text("mine")
    result = run_trainyard("new-plugin", "acme", cwd=tmp_path)
    assert result.returncode == 2
    assert "already exists and is not empty; nothing was written" in result.stderr
    assert [p.name for p in (tmp_path / "acme").iterdir()] == ["notes.txt"]


def test_new_plugin_rejects_a_name_that_cannot_be_a_package(tmp_path):
    result = run_trainyard("new-plugin", "3d-things", cwd=tmp_path)
    assert result.returncode == 2
    assert "plugin name '3d-things': use letters" in result.stderr
    assert not (tmp_path / "3d-things").exists()


def test_the_templates_ship_in_the_wheel(installed_wheels, tmp_path):
    result = run_trainyard("new-plugin", "acme-wheel", "--task", "seg", env={"PYTHONPATH": str(installed_wheels)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "acme-wheel" / "acme_wheel" / "models.py").read_text().count("class AcmeWheelSegmenter(nn.Module)") == 1
