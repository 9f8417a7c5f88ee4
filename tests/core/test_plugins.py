"""Plugins discovered through real installed entry points, in fresh processes."""

import sys

import pytest

from conftest import run_trainyard

PROBE = """
from trainyard import MODELS, DATASETS
print("models:", MODELS.names())
entry = MODELS.get_entry("ToyClassifier")
print("origin:", entry.origin.plugin, entry.origin.distribution, entry.origin.version)
print("lazy:", "trainyard_example.models" not in __import__("sys").modules)
model = MODELS.build(dict(type="ToyClassifier", num_classes=4))
print("built:", type(model).__name__)
print("dataset:", type(DATASETS.build(dict(type="example.RandomImages"))).__name__)
"""


def probe(installed_plugins, code, **env):
    import subprocess
    import os

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(installed_plugins), **env},
        timeout=120,
    )


def test_installed_plugin_fills_registries_lazily(installed_plugins):
    result = probe(installed_plugins, PROBE)
    assert result.returncode == 0, result.stderr
    assert "ToyClassifier" in result.stdout
    assert "origin: example trainyard-example 1.2.3" in result.stdout
    assert "lazy: True" in result.stdout
    assert "built: ToyClassifier" in result.stdout
    assert "dataset: RandomImages" in result.stdout


def test_broken_plugins_are_reported_once_and_others_keep_working(installed_plugins):
    result = probe(installed_plugins, PROBE + "\nMODELS.names(); DATASETS.names()\n")
    assert result.returncode == 0, result.stderr
    assert "built: ToyClassifier" in result.stdout
    assert result.stderr.count("this plugin is broken on purpose") == 1
    assert "plugin 'raises_on_import' (distribution trainyard-broken 0.0.1" in result.stderr
    assert "entry point 'raises_on_import = trainyard_broken.raises_on_import'" in result.stderr
    assert "RuntimeError" in result.stderr


def test_misspelt_hook_is_reported_naming_its_plugin(installed_plugins):
    result = probe(installed_plugins, "from trainyard import MODELS; MODELS.names()")
    assert "plugin 'misspelt_hook'" in result.stderr
    assert "implements 'register_modles', which is not a trainyard hook; did you mean 'register_models'?" in result.stderr


def test_unknown_name_lists_plugins_that_failed(installed_plugins):
    result = probe(installed_plugins, "from trainyard import MODELS; MODELS.get('ToyClasifier')")
    assert result.returncode != 0
    assert "Did you mean 'ToyClassifier'" in result.stderr
    assert "Plugins that failed to load: raises_on_import" in result.stderr


def test_disable_plugins_by_name(installed_plugins):
    result = probe(
        installed_plugins,
        "from trainyard import MODELS; print('ToyClassifier' in MODELS)",
        TRAINYARD_DISABLE_PLUGINS="example,raises_on_import",
    )
    assert result.stdout.strip() == "False"
    assert "broken on purpose" not in result.stderr


def test_autoload_off_loads_no_plugin(installed_plugins):
    result = probe(
        installed_plugins,
        "from trainyard import MODELS; print(len(MODELS))",
        TRAINYARD_PLUGINS_AUTOLOAD="0",
    )
    assert result.stdout.strip() == "0" and result.stderr == ""


def test_strict_mode_turns_a_plugin_failure_into_an_error(installed_plugins):
    result = probe(
        installed_plugins,
        "from trainyard import MODELS; MODELS.names()",
        TRAINYARD_STRICT_PLUGINS="1",
        TRAINYARD_DISABLE_PLUGINS="misspelt_hook",
    )
    assert result.returncode != 0
    assert "PluginError" in result.stderr and "TRAINYARD_STRICT_PLUGINS=1" in result.stderr
    assert "this plugin is broken on purpose" in result.stderr


def test_plugins_command_lists_plugins_and_what_they_registered(installed_plugins):
    result = run_trainyard("plugins", env={"PYTHONPATH": str(installed_plugins)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "example  [loaded]  trainyard-example 1.2.3" in out
    assert "MODELS (1): ToyClassifier" in out and "DATASETS (1): RandomImages" in out
    assert "raises_on_import  [failed]" in out
    for builtin in ("trainyard_cls", "trainyard_det", "trainyard_seg"):
        assert f"{builtin}  [loaded]  trainyard" in out
    assert "OPTIMIZERS" in out and "SGD" in out
    assert "  configs (" in out and "trainyard::cls/resnet18_cifar10.py" in out  # what `_base_` can name


def test_import_trainyard_loads_no_torchvision_and_no_plugin(installed_plugins):
    code = (
        "import sys, trainyard\n"
        "bad = [m for m in sys.modules if m.startswith(('torchvision', 'trainyard_', 'torch'))]\n"
        "print(bad)\n"
    )
    result = probe(installed_plugins, code)
    assert result.stdout.strip() == "[]", result.stdout


# trainyard plugins --check NAME: a plugin's own CI

def test_check_passes_a_working_plugin_and_builds_what_needs_no_arguments(installed_plugins):
    result = run_trainyard("plugins", "--check", "example", env={"PYTHONPATH": str(installed_plugins)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "example  [loaded]  trainyard-example 1.2.3" in result.stdout
    assert "ToyClassifier  built" in result.stdout and "RandomImages   built" in result.stdout
    assert "example: 2 built, 0 need arguments, 0 not built without a config, 0 failed" in result.stdout


def test_check_fails_on_a_lazy_entry_whose_target_does_not_import(installed_plugins):
    result = run_trainyard("plugins", "--check", "dangling_lazy", env={"PYTHONPATH": str(installed_plugins)})
    assert result.returncode == 1
    assert "PhantomModel  FAILED" in result.stdout
    assert "'trainyard_broken.no_such_module:PhantomModel', which cannot be imported: ModuleNotFoundError" in result.stdout


@pytest.mark.parametrize("plugin, problem", [
    ("raises_on_import", "problem: failed to import: RuntimeError: this plugin is broken on purpose"),
    ("misspelt_hook", "problem: implements 'register_modles', which is not a trainyard hook; did you mean 'register_models'?"),
])
def test_check_fails_on_any_load_problem_of_the_plugin_as_strict_mode_would(installed_plugins, plugin, problem):
    result = run_trainyard("plugins", "--check", plugin, env={"PYTHONPATH": str(installed_plugins)})
    assert result.returncode == 1
    assert problem in result.stdout


def test_check_of_an_unknown_plugin_lists_the_installed_ones(installed_plugins):
    result = run_trainyard("plugins", "--check", "exampel", env={"PYTHONPATH": str(installed_plugins)})
    assert result.returncode == 2
    assert "no installed plugin is called 'exampel'; installed plugins: " in result.stderr
    assert "example (trainyard-example)" in result.stderr


@pytest.mark.parametrize("plugin", ["trainyard_cls", "trainyard_det", "trainyard_seg"])
def test_built_in_plugins_pass_the_check(plugin):
    from trainyard.plugin_check import check_plugin

    report = check_plugin(plugin)
    assert not report.failed, "\n".join(report.lines())
    assert report.components
